//! Sign-in attempts per account and per client address, checked before any password hashing:
//! argon2 is the most expensive thing a signed-out client can ask for, so a storm of guesses
//! must be refused before it reaches the hasher, not queued behind it.
//!
//! Two layers. In memory, per instance, GCRA buckets from `governor` refuse a storm without
//! touching the database. Then the client address's and the account's allowances in the
//! database (`SharedQuota`, the same rates and bursts) are the ones every instance draws on,
//! so an attacker does not get an allowance per instance behind a balancer. Every attempt
//! counts, successful or not, because the outcome is only known after the hashing this is
//! meant to spare. The address is charged first: a client that has spent its own allowance
//! takes nothing more from the accounts it guesses at.
//!
//! Keys are digests (`ThrottleKey`): of organization and username as sent, whether or not
//! the account exists, so a refusal does not tell which do; of the address, so the database
//! keeps no client addresses in the clear. The memory and the row a key takes do not depend
//! on what a client sends.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use sha2::{Digest, Sha256};

/// Past this many tracked keys, keys whose buckets are full again are forgotten, so a spray
/// of made-up usernames cannot grow the limiter without bound.
const PRUNE_ABOVE_KEYS: usize = 10_000;

/// Whose attempts are counted, as the throttle knows it: an account or a client address,
/// as a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThrottleKey([u8; 32]);

impl ThrottleKey {
    /// `slug` and `username` are the normalised ones.
    pub fn account(slug: &str, username: &str) -> Self {
        Self::digest(&[b"account", slug.as_bytes(), username.as_bytes()])
    }

    pub fn address(address: IpAddr) -> Self {
        Self::digest(&[b"address", address.to_string().as_bytes()])
    }

    /// Each part ends with a zero byte, so no two lists of parts run together alike.
    fn digest(parts: &[&[u8]]) -> Self {
        let mut digest = Sha256::new();
        for part in parts {
            digest.update(part);
            digest.update([0]);
        }
        Self(digest.finalize().into())
    }

    /// As stored in the database.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

pub struct LoginThrottle {
    per_account: DefaultKeyedRateLimiter<ThrottleKey>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    shared_per_account: SharedQuota,
    shared_per_address: SharedQuota,
}

/// An attempt refused; the next one may come after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl LoginThrottle {
    pub fn new(per_account_per_minute: NonZeroU32, per_address_per_minute: NonZeroU32) -> Self {
        Self {
            per_account: RateLimiter::keyed(Quota::per_minute(per_account_per_minute)),
            per_address: RateLimiter::keyed(Quota::per_minute(per_address_per_minute)),
            shared_per_account: SharedQuota::per_minute(per_account_per_minute),
            shared_per_address: SharedQuota::per_minute(per_address_per_minute),
        }
    }

    /// Takes one attempt from this instance's allowance of the address (when the transport
    /// knows it) and then of the account.
    pub fn attempt(&self, account: &ThrottleKey, address: Option<IpAddr>) -> Result<(), Throttled> {
        if let Some(address) = address {
            check(&self.per_address, &address)?;
        }
        check(&self.per_account, account)
    }

    /// The allowances in the database that every instance shares and an attempt draws on,
    /// in the order to take them, each with its quota.
    pub fn shared(
        &self,
        account: ThrottleKey,
        address: Option<IpAddr>,
    ) -> impl Iterator<Item = (ThrottleKey, SharedQuota)> + use<> {
        let address = address.map(|address| (ThrottleKey::address(address), self.shared_per_address));
        address.into_iter().chain([(account, self.shared_per_account)])
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), Throttled> {
    if limiter.len() > PRUNE_ABOVE_KEYS {
        limiter.retain_recent();
    }
    limiter
        .check_key(key)
        .map_err(|not_until| Throttled { retry_after: not_until.wait_time_from(limiter.clock().now()) })
}

/// GCRA over an allowance time kept in the database (`auth::store::take_login_attempt`): each
/// attempt moves it one `interval` past the later of now and where it stood, and an attempt
/// is admitted while it stands no more than `burst - 1` intervals ahead of now. In
/// milliseconds, so the statement can compute it on both back-ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedQuota {
    pub interval_ms: i64,
    burst: i64,
}

impl SharedQuota {
    fn per_minute(attempts: NonZeroU32) -> Self {
        Self { interval_ms: (60_000 / i64::from(attempts.get())).max(1), burst: attempts.get().into() }
    }

    /// How far ahead of now the allowance time may stand for an attempt to be admitted.
    pub fn burst_span_ms(&self) -> i64 {
        (self.burst - 1) * self.interval_ms
    }

    /// When an attempt refused with the allowance `ahead_ms` ahead of now may come again.
    pub fn refusal(&self, ahead_ms: i64) -> Throttled {
        let wait_ms = (ahead_ms - self.burst_span_ms()).max(0);
        Throttled { retry_after: Duration::from_millis(wait_ms.unsigned_abs()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn an_account_is_limited_without_limiting_another() {
        let throttle = LoginThrottle::new(per_minute(2), per_minute(100));
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        let alice = ThrottleKey::account("demo", "alice");
        assert!(throttle.attempt(&alice, address).is_ok());
        assert!(throttle.attempt(&alice, address).is_ok());
        let refused = throttle.attempt(&alice, address).unwrap_err();
        assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(30));
        assert!(throttle.attempt(&ThrottleKey::account("demo", "bob"), address).is_ok());
        assert!(throttle.attempt(&ThrottleKey::account("other", "alice"), address).is_ok());
    }

    #[test]
    fn an_address_is_limited_over_all_accounts() {
        let throttle = LoginThrottle::new(per_minute(100), per_minute(3));
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        for n in 0..3 {
            assert!(throttle.attempt(&ThrottleKey::account("demo", &format!("user{n}")), address).is_ok());
        }
        let user9 = ThrottleKey::account("demo", "user9");
        assert!(throttle.attempt(&user9, address).is_err());
        assert!(throttle.attempt(&user9, Some(IpAddr::from([10, 0, 0, 2]))).is_ok());
    }

    #[test]
    fn the_shared_quota_admits_a_burst_then_one_an_interval() {
        let quota = SharedQuota::per_minute(per_minute(3));
        assert_eq!(quota.interval_ms, 20_000);
        // Three at once move the allowance three intervals ahead; the third was admitted at two.
        assert_eq!(quota.burst_span_ms(), 40_000);
        let refused = quota.refusal(60_000);
        assert_eq!(refused.retry_after, Duration::from_secs(20), "the next interval");
        assert_eq!(quota.refusal(0).retry_after, Duration::ZERO);
    }

    #[test]
    fn keys_are_digests_in_hex_that_keep_their_parts_apart() {
        let key = ThrottleKey::account("demo", "alice");
        assert_eq!(key.to_hex().len(), 64);
        assert_ne!(key, ThrottleKey::account("demoa", "lice"));
        let address = IpAddr::from([10, 0, 0, 1]);
        assert_ne!(ThrottleKey::address(address), ThrottleKey::account("address", "10.0.0.1"));
    }

    #[test]
    fn an_attempt_draws_on_the_shared_allowance_of_its_address_first() {
        let throttle = LoginThrottle::new(per_minute(3), per_minute(60));
        let (account, address) = (ThrottleKey::account("demo", "alice"), IpAddr::from([10, 0, 0, 1]));
        let drawn: Vec<_> = throttle.shared(account, Some(address)).collect();
        let expected = [
            (ThrottleKey::address(address), SharedQuota::per_minute(per_minute(60))),
            (account, SharedQuota::per_minute(per_minute(3))),
        ];
        assert_eq!(drawn, expected);
        assert_eq!(throttle.shared(account, None).count(), 1, "no address, no allowance of one");
    }
}

//! Sign-in attempts per account and per client address, checked before any password hashing:
//! argon2 is the most expensive thing a signed-out client can ask for, so a storm of guesses
//! must be refused before it reaches the hasher, not queued behind it.
//!
//! The limiters are in memory, per instance (GCRA buckets from `governor`): with several
//! instances behind a balancer an attacker gets each instance's allowance. Every attempt
//! counts, successful or not, because the outcome is only known after the hashing this is
//! meant to spare. Accounts are keyed by a digest of organization and username, so the
//! memory a key takes does not depend on what a client sends.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use sha2::{Digest, Sha256};

/// Past this many tracked keys, keys whose buckets are full again are forgotten, so a spray
/// of made-up usernames cannot grow the limiter without bound.
const PRUNE_ABOVE_KEYS: usize = 10_000;

pub struct LoginThrottle {
    per_account: DefaultKeyedRateLimiter<[u8; 32]>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
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
        }
    }

    /// Takes one attempt from the account's allowance and then from the address's (when the
    /// transport knows it). `slug` and `username` are the normalised ones.
    pub fn attempt(&self, slug: &str, username: &str, address: Option<IpAddr>) -> Result<(), Throttled> {
        let account = Sha256::new().chain_update(slug).chain_update([0]).chain_update(username).finalize();
        check(&self.per_account, &account.into())?;
        match address {
            Some(address) => check(&self.per_address, &address),
            None => Ok(()),
        }
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
        assert!(throttle.attempt("demo", "alice", address).is_ok());
        assert!(throttle.attempt("demo", "alice", address).is_ok());
        let refused = throttle.attempt("demo", "alice", address).unwrap_err();
        assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(30));
        assert!(throttle.attempt("demo", "bob", address).is_ok());
        assert!(throttle.attempt("other", "alice", address).is_ok());
    }

    #[test]
    fn an_address_is_limited_over_all_accounts() {
        let throttle = LoginThrottle::new(per_minute(100), per_minute(3));
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        for n in 0..3 {
            assert!(throttle.attempt("demo", &format!("user{n}"), address).is_ok());
        }
        assert!(throttle.attempt("demo", "user9", address).is_err());
        assert!(throttle.attempt("demo", "user9", Some(IpAddr::from([10, 0, 0, 2]))).is_ok());
    }
}

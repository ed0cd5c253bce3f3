//! argon2id hashing off the async runtime. Each hash costs ~20 ms of CPU and 19 MiB of memory,
//! so it runs on the blocking pool behind a semaphore: a storm of sign-ins queues up instead of
//! starving the request handlers or exhausting memory.

use std::sync::{
    Arc,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

use argon2::{
    Argon2, PasswordHash, PasswordVerifier,
    password_hash::{PasswordHasher as _, SaltString},
};
use tokio::sync::Semaphore;

use super::Password;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Hashes running or waiting for a permit, for `/metrics`.
    queued: Arc<AtomicUsize>,
    /// Hashes computed since start, for `/metrics`: shows whether refused work was skipped.
    computed: Arc<AtomicU64>,
    /// Verified against when the username does not exist, so an unknown user costs the same
    /// time as a wrong password and sign-in does not reveal which usernames exist.
    decoy_hash: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(String);

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Self {
        let decoy = hash_blocking("decoy password, never matched").expect("argon2 hashes a constant");
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queued: Arc::default(),
            computed: Arc::default(),
            decoy_hash: decoy.into(),
        }
    }

    /// Hashes running or waiting for their turn.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Hashes (and verifications) computed since start.
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: &Password) -> Result<String, HashingError> {
        let password = password.expose().to_owned();
        self.run(move || hash_blocking(&password)).await?
    }

    /// True when `password` matches `stored_hash`; with no hash, does the same work and
    /// answers false.
    pub async fn verify(&self, password: &str, stored_hash: Option<&str>) -> Result<bool, HashingError> {
        let password = password.to_owned();
        let hash = stored_hash.map_or_else(|| self.decoy_hash.to_string(), str::to_owned);
        let known = stored_hash.is_some();
        let matches = self.run(move || verify_blocking(&password, &hash)).await??;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let _queued = Queued::join(&self.queued);
        let _permit = self.permits.acquire().await.map_err(|e| HashingError(e.to_string()))?;
        let done = tokio::task::spawn_blocking(work).await.map_err(|e| HashingError(e.to_string()));
        self.computed.fetch_add(1, Ordering::Relaxed);
        done
    }
}

/// Counts one hash in the queue until dropped, also when the waiting request is abandoned.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn join(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// argon2id with the crate defaults, which are OWASP's: m=19 MiB, t=2, p=1.
fn hash_blocking(password: &str) -> Result<String, HashingError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| HashingError(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashingError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| HashingError(e.to_string()))
}

fn verify_blocking(password: &str, stored: &str) -> Result<bool, HashingError> {
    let parsed = PasswordHash::new(stored).map_err(|e| HashingError(e.to_string()))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_with_argon2id_owasp_parameters_and_verifies() {
        let hasher = PasswordHasher::new(1);
        let password = Password::parse("correct horse".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("wrong horse", Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_user_never_matches_even_the_decoy_password() {
        let hasher = PasswordHasher::new(1);
        assert!(!hasher.verify("decoy password, never matched", None).await.unwrap());
    }
}

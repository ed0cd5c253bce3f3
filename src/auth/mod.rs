//! Signing in and out, sessions and their tokens, password hashing, and the role guards.

pub mod cache;
pub mod events;
pub mod guard;
pub mod model;
pub mod password;
pub mod schema;
pub mod service;
pub mod sessions;
mod store;
pub mod throttle;
pub mod token;
pub mod watch;

pub use model::Password;
pub use password::PasswordHasher;
pub use throttle::LoginThrottle;

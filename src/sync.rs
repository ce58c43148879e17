//! Locks that stay usable after a panic elsewhere.
//!
//! A panic while a `std::sync::Mutex` is held poisons it, and `lock().unwrap()` then
//! turns one panic into a panic of every later user: the status of the supervisor,
//! the login limits, a page cache. What these locks guard is updated in single steps
//! (a counter, a field, an entry replaced whole), so the data is consistent whatever
//! happened to the previous holder: take it, and keep the service running.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub trait Recover<T> {
    /// The guard, whether or not a previous holder panicked.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Recover<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

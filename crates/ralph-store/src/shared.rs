//! One handle to a resource every loop of a process shares (the audit log, whose hash chain has
//! one head: two writers with a copy each would break it). The state database and the ledger
//! have a writer thread of their own instead (`crate::writer`).

use std::sync::{Arc, Mutex, MutexGuard};

/// A cheaply cloneable handle to one `T` (the [`crate::AuditLog`]) used by many
/// loops. Every clone is the same value.
pub struct Shared<T> {
    inner: Arc<Mutex<T>>,
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Shared<T> {
    pub fn new(value: T) -> Shared<T> {
        Shared {
            inner: Arc::new(Mutex::new(value)),
        }
    }

    /// Exclusive use of the value for one short piece of work. Never hold the guard across
    /// an `.await`. A panic while it was held cannot have left a half-written transaction behind
    /// (an uncommitted transaction is rolled back when it drops), so a poisoned lock is used as
    /// it is.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether two handles are the same value.
    pub fn same(&self, other: &Shared<T>) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared(..)")
    }
}

/// The project's audit log shared by every loop of the process: its hash chain has one head, so
/// two writers with a copy each would break it.
pub type SharedAudit = Shared<crate::AuditLog>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_value_across_threads() {
        let shared = Shared::new(0u32);
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let s = shared.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        *s.lock() += 1;
                    }
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().is_ok());
        }
        assert_eq!(*shared.lock(), 8000);
        assert!(shared.same(&shared.clone()));
        assert!(!shared.same(&Shared::new(0)));
    }
}

//! Cancellation shared by many loops: a token every loop (and every process it runs) watches.
//!
//! A request is sticky: once made it stays visible to every clone, so a loop that was busy
//! when a signal arrived still sees it at its next check. Tokens form a tree: a request to a
//! parent reaches every child (SIGINT reaches every story of a plan), a request to a child
//! reaches only that child and its own children (one story cancelled by the scheduler). Later
//! requests escalate: `Kill` after `Interrupt` is seen by processes already being stopped.

use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use crate::process::Control;

#[derive(Default)]
struct State {
    /// Bumped on every request, so a waiter can tell "new since I looked".
    generation: u64,
    control: Option<Control>,
    children: Vec<Weak<Inner>>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    notify: Notify,
}

/// A cancellation token. Clones are the same token; [`Cancel::child`] makes a new one below it.
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("control", &self.current())
            .finish()
    }
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain data that every critical section leaves consistent.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A token cancelled with this one (and on its own).
    pub fn child(&self) -> Cancel {
        let child = Cancel::new();
        let mut st = self.state();
        st.children.retain(|w| w.strong_count() > 0);
        st.children.push(Arc::downgrade(&child.inner));
        if let Some(c) = st.control {
            child.request(c);
        }
        child
    }

    /// Ask every loop and process under this token to stop as `control` says.
    pub fn request(&self, control: Control) {
        let children = {
            let mut st = self.state();
            st.generation += 1;
            st.control = Some(control);
            st.children.retain(|w| w.strong_count() > 0);
            st.children.clone()
        };
        self.inner.notify.notify_waiters();
        for child in children.iter().filter_map(Weak::upgrade) {
            Cancel { inner: child }.request(control);
        }
    }

    /// The latest request, if any.
    pub fn current(&self) -> Option<Control> {
        self.state().control
    }

    /// How many requests were made so far (for [`Cancel::changed`]).
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Wait for a request newer than generation `seen`; returns it and updates `seen`.
    pub async fn changed(&self, seen: &mut u64) -> Control {
        loop {
            // Registered before the check, so a request between the check and the await is
            // not missed (`notify_waiters` wakes every `Notified` created before it).
            let notified = self.inner.notify.notified();
            {
                let st = self.state();
                if st.generation > *seen {
                    if let Some(c) = st.control {
                        *seen = st.generation;
                        return c;
                    }
                }
            }
            notified.await;
        }
    }

    /// Wait until any request has been made.
    pub async fn cancelled(&self) -> Control {
        let mut seen = 0;
        self.changed(&mut seen).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_sticky_and_reach_children() {
        let root = Cancel::new();
        let a = root.child();
        let b = root.child();
        let a1 = a.child();
        assert_eq!(root.current(), None);
        a.request(Control::StopNow);
        assert_eq!(a.current(), Some(Control::StopNow));
        assert_eq!(a1.current(), Some(Control::StopNow));
        assert_eq!(b.current(), None, "a sibling is not cancelled");
        assert_eq!(root.current(), None, "nor the parent");
        root.request(Control::Interrupt);
        assert_eq!(b.current(), Some(Control::Interrupt));
        assert_eq!(a1.cancelled().await, Control::Interrupt);
        // A child made after the request starts cancelled.
        assert_eq!(root.child().current(), Some(Control::Interrupt));
    }

    #[tokio::test]
    async fn changed_sees_escalation_and_wakes_waiters() {
        let token = Cancel::new();
        let mut seen = token.generation();
        let waiter = {
            let t = token.clone();
            tokio::spawn(async move {
                let mut seen = seen;
                let first = t.changed(&mut seen).await;
                let second = t.changed(&mut seen).await;
                (first, second)
            })
        };
        tokio::task::yield_now().await;
        token.request(Control::Interrupt);
        tokio::task::yield_now().await;
        token.request(Control::Kill);
        let got = waiter.await.ok();
        assert_eq!(got, Some((Control::Interrupt, Control::Kill)));
        // Nothing new since: `changed` would wait; the latest is still visible.
        assert_eq!(token.changed(&mut seen).await, Control::Kill);
        assert_eq!(seen, 2);
    }
}

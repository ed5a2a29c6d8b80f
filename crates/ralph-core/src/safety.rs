//! Guardrail state that is not a pattern match: stuck detection. (The parts of `.git` that
//! checkpoints cannot see, its config and hooks, are watched by `ralph_git::RepoMeta`.)

/// Counts iterations that made no progress: no file changed and no completion, or the same
/// error as the previous iteration. At `limit` the loop gets one recovery iteration (the agent
/// is asked to analyse and change approach); reaching it again gives up.
#[derive(Debug, Default)]
pub struct Stuck {
    count: u32,
    last_error: Option<String>,
    recovery_used: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StuckVerdict {
    Fine,
    /// Ask the agent to step back this once.
    Recover,
    GiveUp,
}

impl Stuck {
    /// `changed`: files changed this iteration (`None` when unknown: outside git, a no-change
    /// is never assumed). `error`: the error class and message, if it failed.
    pub fn observe(
        &mut self,
        changed: Option<u32>,
        error: Option<(&str, &str)>,
        limit: u32,
    ) -> StuckVerdict {
        let signature = error.map(|(class, msg)| signature(class, msg));
        let repeated = signature.is_some() && signature == self.last_error;
        let idle = changed == Some(0) && error.is_none();
        self.last_error = signature;
        if repeated || idle {
            self.count += 1;
        } else {
            self.count = 0;
            if changed.is_some_and(|c| c > 0) {
                self.recovery_used = false;
            }
        }
        if limit == 0 || self.count < limit {
            return StuckVerdict::Fine;
        }
        if self.recovery_used {
            StuckVerdict::GiveUp
        } else {
            self.recovery_used = true;
            self.count = 0;
            StuckVerdict::Recover
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }
}

/// An error's identity without the parts that change every time (numbers: ports, ids, times).
fn signature(class: &str, message: &str) -> String {
    let first = message.lines().next().unwrap_or("");
    let digits_out: String = first.chars().filter(|c| !c.is_ascii_digit()).collect();
    format!("{class}:{}", digits_out.trim())
}

/// What the recovery iteration is told.
pub fn recovery_feedback(limit: u32) -> String {
    format!(
        "The last {limit} iterations made no progress (no files changed, or the same error \
         each time). Stop and analyse why the current approach is failing: read the notes and \
         errors above, state the cause in one paragraph, then take a different approach."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_recovers_once_then_gives_up() {
        let mut s = Stuck::default();
        assert_eq!(s.observe(Some(0), None, 3), StuckVerdict::Fine);
        assert_eq!(s.observe(Some(0), None, 3), StuckVerdict::Fine);
        assert_eq!(s.observe(Some(0), None, 3), StuckVerdict::Recover);
        assert_eq!(s.observe(Some(0), None, 3), StuckVerdict::Fine);
        assert_eq!(s.observe(Some(0), None, 3), StuckVerdict::Fine);
        assert_eq!(s.observe(Some(0), None, 3), StuckVerdict::GiveUp);
    }

    #[test]
    fn progress_resets_and_repeated_errors_count() {
        let mut s = Stuck::default();
        assert_eq!(s.observe(Some(0), None, 2), StuckVerdict::Fine);
        assert_eq!(s.observe(Some(3), None, 2), StuckVerdict::Fine);
        assert_eq!(s.count(), 0);
        // The same error (numbers aside) twice in a row: stuck.
        assert_eq!(
            s.observe(None, Some(("crash", "exit 3 at port 4411")), 2),
            StuckVerdict::Fine
        );
        assert_eq!(
            s.observe(None, Some(("crash", "exit 3 at port 5512")), 2),
            StuckVerdict::Fine
        );
        assert_eq!(
            s.observe(None, Some(("crash", "exit 3 at port 1")), 2),
            StuckVerdict::Recover
        );
        // Different errors are not the same failure.
        let mut t = Stuck::default();
        assert_eq!(t.observe(None, Some(("crash", "a")), 2), StuckVerdict::Fine);
        assert_eq!(
            t.observe(None, Some(("timeout", "a")), 2),
            StuckVerdict::Fine
        );
        assert_eq!(t.observe(None, None, 2), StuckVerdict::Fine);
        assert!(recovery_feedback(3).contains("last 3 iterations"));
    }
}

//! The layout of the refs ralph keeps under `refs/ralph/`, spelled once: the engine, `ralph
//! checkpoints`, `ralph rollback` and `ralph audit verify` build and read ref names only
//! through these functions.
//!
//! ```text
//! refs/ralph/checkpoints/<run>/<NNNN>           after iteration N (0000: before the first)
//! refs/ralph/checkpoints/<run>/rollback-<yyyymmdd-hhmmss>[-K]
//!                                               the state a rollback replaced
//! refs/ralph/candidates/…                       stories mode: merge-queue candidates
//! refs/ralph/stories/…                          stories mode: kept story commits
//! ```

/// Everything ralph writes is under this prefix; every other ref belongs to the user.
pub const NAMESPACE: &str = "refs/ralph/";
/// Every run's checkpoints: `refs/ralph/checkpoints/<run>/<name>`.
pub const CHECKPOINTS: &str = "refs/ralph/checkpoints/";
/// Stories mode (to come): the integration tip plus a story's commits, checked by the
/// pre-merge gates before the integration branch may move to it (STORIES.md "candidate").
pub const CANDIDATES: &str = "refs/ralph/candidates/";
/// Stories mode (to come): story commits kept after their branch is cleaned up, so nothing
/// unmerged is ever unreachable (STORIES.md "Nothing lost").
pub const STORIES: &str = "refs/ralph/stories/";
/// Name prefix of the checkpoint a rollback takes of the state it replaces.
pub const ROLLBACK_PREFIX: &str = "rollback-";

/// `refs/ralph/checkpoints/<run>/<NNNN>`: the checkpoint after `iteration` (0 = before the
/// first), zero-padded to 4 digits like the run's artifact directories.
pub fn checkpoint_ref(run_id: &str, iteration: u32) -> String {
    named_checkpoint_ref(run_id, &checkpoint_name(iteration))
}

/// `refs/ralph/checkpoints/<run>/<name>`, for a name from [`checkpoint_name`] or
/// [`rollback_name`].
pub fn named_checkpoint_ref(run_id: &str, name: &str) -> String {
    format!("{CHECKPOINTS}{run_id}/{name}")
}

/// `refs/ralph/checkpoints/<run>/`: the prefix to list one run's checkpoints with.
pub fn run_checkpoints(run_id: &str) -> String {
    format!("{CHECKPOINTS}{run_id}/")
}

/// `0003`: the name of the checkpoint after iteration 3.
pub fn checkpoint_name(iteration: u32) -> String {
    format!("{iteration:04}")
}

/// The iteration an iteration checkpoint's name stands for (`0003` → 3, `7` → 7); `None` for
/// other names (a rollback's) and numbers too large for a `u32`.
pub fn checkpoint_iteration(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// `rollback-<yyyymmdd-hhmmss>` (UTC) for a rollback taken at `unix_secs`.
pub fn rollback_name(unix_secs: i64) -> String {
    format!("{ROLLBACK_PREFIX}{}", utc_stamp(unix_secs))
}

/// `refs/ralph/checkpoints/<run>/<name>` → `(run, name)`; `None` for any other ref, and for
/// names with more components.
pub fn parse_checkpoint_ref(refname: &str) -> Option<(&str, &str)> {
    let rest = refname.strip_prefix(CHECKPOINTS)?;
    let (run, name) = rest.split_once('/')?;
    (!run.is_empty() && !name.is_empty() && !name.contains('/')).then_some((run, name))
}

/// Whether `id` can be a run id: it becomes one component of a ref name, so only ASCII
/// letters, digits, `-`, `_` and `.`, not starting with `-` or `.` and without `..`.
pub fn is_valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.contains("..")
}

/// `yyyymmdd-hhmmss` in UTC (proleptic Gregorian calendar; days from the epoch to a civil date
/// as in Howard Hinnant's `civil_from_days`).
fn utc_stamp(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_refs_are_zero_padded_per_run() {
        assert_eq!(checkpoint_ref("r1", 3), "refs/ralph/checkpoints/r1/0003");
        assert_eq!(checkpoint_ref("r1", 0), "refs/ralph/checkpoints/r1/0000");
        assert_eq!(
            checkpoint_ref("r1", 12345),
            "refs/ralph/checkpoints/r1/12345"
        );
        assert_eq!(run_checkpoints("r1"), "refs/ralph/checkpoints/r1/");
        assert!(checkpoint_ref("r1", 3).starts_with(&run_checkpoints("r1")));
        assert!(CHECKPOINTS.starts_with(NAMESPACE));
        assert!(CANDIDATES.starts_with(NAMESPACE));
        assert!(STORIES.starts_with(NAMESPACE));
    }

    #[test]
    fn refs_split_into_run_and_name() {
        assert_eq!(
            parse_checkpoint_ref("refs/ralph/checkpoints/20261121-101500-ab12/0003"),
            Some(("20261121-101500-ab12", "0003"))
        );
        let name = rollback_name(0);
        assert_eq!(
            parse_checkpoint_ref(&named_checkpoint_ref("r", &name)),
            Some(("r", name.as_str()))
        );
        assert_eq!(parse_checkpoint_ref("refs/ralph/checkpoints/r"), None);
        assert_eq!(parse_checkpoint_ref("refs/ralph/checkpoints/r/"), None);
        assert_eq!(parse_checkpoint_ref("refs/ralph/checkpoints//0001"), None);
        assert_eq!(parse_checkpoint_ref("refs/ralph/checkpoints/r/a/b"), None);
        assert_eq!(parse_checkpoint_ref("refs/heads/main"), None);
    }

    #[test]
    fn names_say_which_iteration() {
        assert_eq!(checkpoint_name(7), "0007");
        assert_eq!(checkpoint_iteration("0007"), Some(7));
        assert_eq!(checkpoint_iteration("7"), Some(7));
        assert_eq!(checkpoint_iteration("0000"), Some(0));
        assert_eq!(checkpoint_iteration(""), None);
        assert_eq!(checkpoint_iteration("+7"), None);
        assert_eq!(checkpoint_iteration("rollback-20261121-101500"), None);
        assert_eq!(checkpoint_iteration("99999999999999999999"), None);
    }

    #[test]
    fn rollback_names_are_utc_timestamps() {
        assert_eq!(rollback_name(0), "rollback-19700101-000000");
        // 2026-11-21T10:15:00Z
        assert_eq!(rollback_name(1_795_256_100), "rollback-20261121-101500");
        // 2024-02-29T23:59:59Z (a leap day) and 2000-03-01T00:00:00Z.
        assert_eq!(rollback_name(1_709_251_199), "rollback-20240229-235959");
        assert_eq!(rollback_name(951_868_800), "rollback-20000301-000000");
        assert_eq!(rollback_name(-1), "rollback-19691231-235959");
    }

    #[test]
    fn run_ids_are_checked() {
        assert!(is_valid_run_id("20261121-101500-ab12"));
        assert!(is_valid_run_id("a.b_c"));
        for bad in ["", "-x", "a/b", "..", "a..b", "a b", ".hidden", "é"] {
            assert!(!is_valid_run_id(bad), "{bad}");
        }
    }
}

//! The prompt sent each iteration: the user's prompt first, then ralph's short fixed
//! instructions, then the volatile part (iteration number, feedback). The stable prefix stays
//! byte-identical between iterations so the provider's prompt cache stays warm.

/// ralph's fixed instructions. Kept under 600 bytes: every byte is paid for every iteration.
/// The marker is named inside a sentence, never on a line of its own, so an agent that echoes
/// the prompt does not complete the run by accident.
pub fn instructions(marker: &str) -> String {
    format!(
        "## Loop rules (ralph)\n\
         You are one iteration of an automated loop; no human answers questions, so decide and \
         act. Files you change persist; the next iteration gets this prompt again. When the whole \
         task is done and verified, end your final message with a line containing only \
         {marker} and nothing else. Never write that line before then."
    )
}

/// Assemble the full prompt.
pub fn build(
    user_prompt: &str,
    marker: &str,
    iteration: u32,
    max_iterations: u32,
    notes: Option<&str>,
    feedback: Option<&str>,
) -> String {
    let user = user_prompt.trim_end();
    let mut out = String::with_capacity(user.len() + 700 + feedback.map_or(0, str::len));
    out.push_str(user);
    out.push_str("\n\n");
    out.push_str(&instructions(marker));
    out.push_str("\n\n## Iteration\n");
    out.push_str(&format!(
        "This is iteration {iteration} of at most {max_iterations}.\n"
    ));
    if let Some(notes) = notes.filter(|n| !n.trim().is_empty()) {
        out.push_str("\n## Notes from earlier iterations\n");
        out.push_str(notes.trim_end());
        out.push('\n');
    }
    if let Some(fb) = feedback.filter(|f| !f.trim().is_empty()) {
        out.push_str("\n## Feedback from the previous iteration\n");
        out.push_str(fb.trim_end());
        out.push('\n');
    }
    out
}

/// Keep the last `max_bytes` of `text` (cut at a line boundary where possible) so a gate that
/// prints megabytes cannot flood the next prompt.
pub fn tail(text: &str, max_bytes: usize, max_lines: usize) -> String {
    let mut start = text.len().saturating_sub(max_bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let mut t = &text[start..];
    if start > 0 {
        if let Some(nl) = t.find('\n') {
            t = &t[nl + 1..];
        }
    }
    let lines: Vec<&str> = t.lines().collect();
    let skip = lines.len().saturating_sub(max_lines);
    let kept = lines[skip..].join("\n");
    if start > 0 || skip > 0 {
        format!("[… earlier output omitted …]\n{kept}")
    } else {
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::completion::{claims_completion, marker_lines};

    #[test]
    fn instructions_are_short_and_do_not_contain_a_bare_marker_line() {
        let text = instructions("LOOP_COMPLETE");
        assert!(text.len() <= 600, "{} bytes", text.len());
        assert_eq!(marker_lines(&text, "LOOP_COMPLETE"), 0);
        let full = build(
            "Fix the bug.",
            "LOOP_COMPLETE",
            1,
            10,
            None,
            Some("gate failed"),
        );
        assert!(!claims_completion(&full, "LOOP_COMPLETE"));
    }

    #[test]
    fn prefix_is_stable_between_iterations() {
        let a = build("Task\n", "M", 1, 100, None, None);
        let b = build("Task\n", "M", 2, 100, None, None);
        let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        assert!(
            common as f64 / b.len() as f64 > 0.9,
            "{common} of {}",
            b.len()
        );
        assert!(a.starts_with("Task\n\n## Loop rules"));
    }

    #[test]
    fn feedback_goes_last() {
        let p = build(
            "Task",
            "M",
            3,
            5,
            Some("- iteration 1: changed no files"),
            Some("tests failed:\nboom"),
        );
        assert!(p.ends_with(
            "## Notes from earlier iterations\n- iteration 1: changed no files\n\n\
             ## Feedback from the previous iteration\ntests failed:\nboom\n"
        ));
    }

    #[test]
    fn tail_is_bounded() {
        let big: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let t = tail(&big, 200, 5);
        assert!(t.starts_with("[… earlier output omitted …]\n"));
        assert!(t.ends_with("line 9999"));
        assert_eq!(t.lines().count(), 6);
        assert_eq!(tail("a\nb", 100, 10), "a\nb");
        let multi = "é".repeat(100);
        assert!(tail(&multi, 51, 10).ends_with('é'));
    }
}

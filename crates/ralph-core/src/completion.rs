//! Completion detection (CLI.md "Completion"): the marker must stand on a line of its own in the
//! agent's final answer. Mentioning it inside a sentence does not count.

/// Does `final_text` claim completion with `marker`?
///
/// Accepted: the last non-empty line is exactly the marker after trimming whitespace and
/// stripping markdown emphasis or code wrapping (`**M**`, `*M*`, `_M_`, `` `M` ``,
/// ```` ```M``` ````), or the answer ends with `<promise>M</promise>` (the convention of the
/// Claude Code ralph plugin, where it is appended to the last sentence). A marker followed by
/// more text ("LOOP_COMPLETE\nActually, not done yet.") is not a claim.
pub fn claims_completion(final_text: &str, marker: &str) -> bool {
    if marker.is_empty() {
        return false;
    }
    let promise = format!("<promise>{marker}</promise>");
    let text = final_text.trim_end();
    if text.ends_with(&promise) {
        return true;
    }
    // A closing code fence after the marker is wrapping, not more text.
    let Some(last) = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.chars().all(|c| c == '`'))
    else {
        return false;
    };
    last == promise || strip_wrapping(last) == marker
}

fn strip_wrapping(mut s: &str) -> &str {
    // Peel matching wrappers repeatedly: "**`LOOP_COMPLETE`**".
    loop {
        let before = s;
        for w in ["```", "**", "__", "`", "*", "_"] {
            if s.len() >= 2 * w.len() && s.starts_with(w) && s.ends_with(w) {
                s = s[w.len()..s.len() - w.len()].trim();
                break;
            }
        }
        if s == before {
            return s;
        }
    }
}

/// How many lines of `text` would count as a completion claim (used to warn when the user's own
/// prompt contains the marker on a line of its own: an agent echoing it would finish the run).
pub fn marker_lines(text: &str, marker: &str) -> usize {
    text.lines()
        .filter(|l| strip_wrapping(l.trim()) == marker)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "LOOP_COMPLETE";

    #[test]
    fn only_the_last_non_empty_line_counts() {
        assert!(!claims_completion(
            "LOOP_COMPLETE\nActually, not done yet.",
            M
        ));
        assert!(!claims_completion(
            "**LOOP_COMPLETE**\n\nwait, one more test fails",
            M
        ));
        assert!(claims_completion("work\nLOOP_COMPLETE\n\n  \n", M));
        assert!(!claims_completion("", M));
        assert!(!claims_completion("\n\n", M));
    }

    #[test]
    fn marker_on_its_own_line_counts() {
        assert!(claims_completion("All done.\nLOOP_COMPLETE\n", M));
        assert!(claims_completion("LOOP_COMPLETE", M));
        assert!(claims_completion("  LOOP_COMPLETE  ", M));
        assert!(claims_completion("done\n**LOOP_COMPLETE**", M));
        assert!(claims_completion("done\n`LOOP_COMPLETE`", M));
        assert!(claims_completion("done\n*LOOP_COMPLETE*", M));
        assert!(claims_completion("done\n_LOOP_COMPLETE_", M));
        assert!(claims_completion("done\n**`LOOP_COMPLETE`**", M));
        assert!(claims_completion("done\n```\nLOOP_COMPLETE\n```", M));
        assert!(claims_completion("done\r\nLOOP_COMPLETE\r\n", M));
    }

    #[test]
    fn promise_tags_count() {
        assert!(claims_completion("<promise>LOOP_COMPLETE</promise>", M));
        assert!(claims_completion(
            "All tests pass. <promise>LOOP_COMPLETE</promise>\n",
            M
        ));
        // More text after it: not the end of the answer.
        assert!(!claims_completion(
            "x\n  <promise>LOOP_COMPLETE</promise>\nthanks",
            M
        ));
    }

    #[test]
    fn marker_in_prose_does_not_count() {
        assert!(!claims_completion(
            "I will print LOOP_COMPLETE when done.",
            M
        ));
        assert!(!claims_completion(
            "I created hello.txt and verified it. LOOP_COMPLETE",
            M
        ));
        assert!(!claims_completion(
            "LOOP_COMPLETE is what I say at the end",
            M
        ));
        assert!(!claims_completion("Not yet LOOP_COMPLETE.", M));
        assert!(!claims_completion("LOOP_COMPLETE.", M));
        assert!(!claims_completion("LOOP_COMPLETED", M));
        assert!(!claims_completion("NOT_LOOP_COMPLETE", M));
        assert!(!claims_completion(
            "I'll say <promise>LOOP_COMPLETE</promise> later",
            M
        ));
        assert!(!claims_completion("", M));
        assert!(!claims_completion("**", M));
    }

    #[test]
    fn custom_markers() {
        assert!(claims_completion("ok\nDONE!", "DONE!"));
        assert!(!claims_completion("ok\nDONE", "DONE!"));
        assert!(!claims_completion("anything", ""));
    }

    #[test]
    fn counts_marker_lines() {
        assert_eq!(
            marker_lines("a\nLOOP_COMPLETE\nsay LOOP_COMPLETE\n`LOOP_COMPLETE`", M),
            2
        );
    }
}

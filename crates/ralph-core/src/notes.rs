//! ralph's notes on earlier iterations: what went wrong and what was tried, carried in the
//! prompt's volatile part so a fresh agent does not repeat a failed attempt. Only noteworthy
//! iterations are noted (failures, failed gates, iterations that changed nothing): a healthy
//! iteration leaves its record in the files, and every byte here is paid for in every prompt.
//! The notes are bounded: past `context.notes_max_tokens` the engine asks the agent to
//! summarise them (see `engine.rs`).

/// One line about iteration `n`, or `None` when there is nothing worth telling the next one.
pub fn note_for(
    n: u32,
    outcome: &str,
    error: Option<(&str, &str)>,
    failed_gates: &[(String, String)],
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some((class, message)) = error {
        parts.push(format!("failed ({class}): {}", first_line(message, 200)));
    }
    for (gate, how) in failed_gates {
        parts.push(format!("gate `{gate}` {how}"));
    }
    if parts.is_empty() && outcome == "no_change" {
        parts.push("changed no files".to_string());
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!("- iteration {n}: {}", parts.join("; ")))
}

fn first_line(s: &str, max: usize) -> String {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.len() <= max {
        return line.to_string();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// Append a note to the stored notes text.
pub fn append(notes: Option<&str>, note: &str) -> String {
    match notes {
        Some(existing) if !existing.is_empty() => format!("{existing}\n{note}"),
        _ => note.to_string(),
    }
}

/// The notes as the next prompt shows them: without the previous iteration's own note when the
/// feedback section already tells that iteration in detail.
pub fn for_prompt(notes: Option<&str>, previous: u32, has_feedback: bool) -> Option<String> {
    let notes = notes?;
    let skip = format!("- iteration {previous}:");
    let kept: Vec<&str> = notes
        .lines()
        .filter(|l| !(has_feedback && l.starts_with(&skip)))
        .collect();
    let kept = kept.join("\n");
    (!kept.trim().is_empty()).then_some(kept)
}

/// Rough token count: about four bytes a token for English prose and code (the figure OpenAI
/// and Anthropic document), rounded up. Used to decide when notes need summarising, where a
/// tokenizer's exact count would not change the decision but would cost tens of megabytes.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// The prompt that asks an agent to summarise the notes.
pub fn summary_prompt(notes: &str, max_tokens: u64) -> String {
    let words = (max_tokens * 3 / 4).max(50);
    format!(
        "Summarise these notes about earlier attempts at a coding task in at most {words} \
         words. Keep every error message, failing test and command that matters, and what was \
         already tried that did not work; drop repetition. Reply with the summary only, as a \
         short bulleted list. Do not use any tools.\n\n{notes}\n"
    )
}

/// Accept a summary only if it is non-empty and shorter than what it replaces.
pub fn accept_summary(notes: &str, summary: &str) -> Option<String> {
    let summary = summary.trim();
    if summary.is_empty() || estimate_tokens(summary) >= estimate_tokens(notes) {
        return None;
    }
    Some(format!("- summary of earlier iterations:\n{summary}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_noteworthy_iterations_are_noted() {
        assert_eq!(note_for(3, "progressed", None, &[]), None);
        assert_eq!(note_for(3, "completed", None, &[]), None);
        assert_eq!(
            note_for(4, "no_change", None, &[]).as_deref(),
            Some("- iteration 4: changed no files")
        );
        assert_eq!(
            note_for(
                5,
                "failed",
                Some(("timeout", "killed after 30m\nmore")),
                &[]
            )
            .as_deref(),
            Some("- iteration 5: failed (timeout): killed after 30m")
        );
        let gates = [("tests".to_string(), "failed with exit code 1".to_string())];
        assert_eq!(
            note_for(6, "gates_failed", None, &gates).as_deref(),
            Some("- iteration 6: gate `tests` failed with exit code 1")
        );
    }

    #[test]
    fn notes_append_and_summaries_must_be_shorter() {
        let n = append(None, "- a");
        let n = append(Some(&n), "- b");
        assert_eq!(n, "- a\n- b");
        assert_eq!(
            accept_summary("short", "a much longer summary than before"),
            None
        );
        assert_eq!(accept_summary("x".repeat(400).as_str(), "  "), None);
        assert!(accept_summary(&"x".repeat(400), "- tried A; failed on B").is_some());
        assert!(summary_prompt("- a", 2000).contains("at most 1500 words"));
        assert_eq!(estimate_tokens("abcde"), 2);
        let notes = "- iteration 1: changed no files\n- iteration 2: gate `t` failed";
        assert_eq!(
            for_prompt(Some(notes), 2, true).as_deref(),
            Some("- iteration 1: changed no files")
        );
        assert_eq!(for_prompt(Some(notes), 2, false).as_deref(), Some(notes));
        assert_eq!(for_prompt(Some("- iteration 2: x"), 2, true), None);
        let long = "é".repeat(300);
        assert!(first_line(&long, 201).ends_with('…'));
    }
}

//! Event sinks for the terminal: one human line per iteration on stderr, and with `--json` one
//! JSON object per event on stdout.

use std::io::Write;

use std::time::Duration;

use ralph_core::{fmt_duration, EventBody, EventSink, RunEvent};

use crate::style;

pub struct Renderer {
    pub json: bool,
    pub human: bool,
    /// stderr is a terminal: the wait countdown rewrites one line in place.
    pub tty: bool,
    /// The last countdown line was drawn (so the next real line starts on a fresh line).
    pub counting: bool,
    /// Colour the human lines (see [`crate::style`]); never the JSON.
    pub colour: bool,
}

impl EventSink for Renderer {
    fn waiting(&mut self, remaining: Duration, reason: &str) {
        if !(self.human && self.tty) {
            return;
        }
        let secs = remaining.as_secs();
        let _ = write!(
            std::io::stderr().lock(),
            "\r  waiting ({reason}): {:02}:{:02}:{:02} left ",
            secs / 3600,
            (secs % 3600) / 60,
            secs % 60
        );
        self.counting = true;
    }

    fn event(&mut self, event: &RunEvent) {
        if self.counting {
            let _ = writeln!(std::io::stderr().lock());
            self.counting = false;
        }
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", event.to_json());
            let _ = out.flush();
        }
        if self.human {
            if let Some(line) = human_line(event, self.colour) {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }
}

pub fn fmt_usd(v: f64) -> String {
    format!("${v:.4}")
}

pub fn fmt_secs(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        fmt_duration(Duration::from_secs(s as u64))
    }
}

pub fn fmt_tokens(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.2}M", n as f64 / 1e6)
    } else if n >= 10_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

/// The human rendering of an event, with the iteration's outcome in colour when `colour`;
/// `None` for events that need no line.
pub fn human_line(event: &RunEvent, colour: bool) -> Option<String> {
    Some(match &event.body {
        EventBody::RunStarted {
            backend,
            model,
            max_iterations,
            iteration,
            resumed,
            sandbox,
            sandbox_gaps,
            ..
        } => {
            let model = model
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            // Said once, at the start: what the agent can and cannot reach.
            let sandbox = if sandbox == "off" {
                String::new()
            } else {
                format!(" · sandbox: {sandbox}")
            };
            let mut line = if *resumed {
                format!(
                    "ralph: resuming run {} after iteration {iteration} of {max_iterations} · {backend}{model}{sandbox}",
                    event.run_id
                )
            } else {
                format!(
                    "ralph: run {} · {backend}{model} · up to {max_iterations} iterations{sandbox}",
                    event.run_id
                )
            };
            for gap in sandbox_gaps {
                line.push_str(&format!("\nralph: warning: sandbox: {gap}"));
            }
            line
        }
        EventBody::SandboxDenied {
            iteration,
            call,
            kind,
            what,
            port,
            reason,
        } => {
            let what = match port {
                Some(p) => format!("{what}:{p}"),
                None if what.is_empty() => "(unnamed)".to_string(),
                None => what.clone(),
            };
            format!("  sandbox refused {kind} access to {what} ({reason}) · iteration {iteration}, {call}")
        }
        EventBody::IterationStarted { .. } => return None,
        EventBody::IterationFinished {
            iteration,
            max_iterations,
            backend,
            outcome,
            duration_s,
            cost_usd,
            cost_source,
            files_changed,
            insertions,
            deletions,
            error_class,
            error_message,
            total_cost_usd,
            context_pct,
            unrestorable,
            ..
        } => {
            let cost = match cost_usd {
                Some(c) => format!("{} (total {})", fmt_usd(*c), fmt_usd(*total_cost_usd)),
                // The agent's figure was nonsense (the warning above says which): not counted.
                None if cost_source == "invalid" => {
                    format!("cost invalid (known total {})", fmt_usd(*total_cost_usd))
                }
                None if *total_cost_usd > 0.0 => {
                    format!("cost unknown (known total {})", fmt_usd(*total_cost_usd))
                }
                None => "cost unknown".to_string(),
            };
            let word = outcome.replace('_', " ");
            let mut what = match style::outcome_colour(outcome) {
                Some(c) => style::paint(&word, c, colour),
                None => word,
            };
            if let Some(f) = files_changed {
                what.push_str(&format!(
                    ", {f} file{} changed",
                    if *f == 1 { "" } else { "s" }
                ));
                if let (Some(i), Some(d), true) = (insertions, deletions, *f > 0) {
                    what.push_str(&format!(" (+{i} −{d})"));
                }
            }
            if !unrestorable.is_empty() {
                what.push_str(&format!(
                    ", {} file{} cannot be restored (too large for checkpoints, \
                     git.max_untracked_mb): {}",
                    unrestorable.len(),
                    if unrestorable.len() == 1 { "" } else { "s" },
                    one_line(
                        &unrestorable
                            .iter()
                            .map(|p| ralph_git::display_path(p))
                            .collect::<Vec<_>>()
                            .join(", "),
                        160
                    )
                ));
            }
            if let Some(class) = error_class {
                what.push_str(&format!(": {class}"));
                if let Some(m) = error_message {
                    // The agent's words: shown, not obeyed (escape sequences made visible).
                    let m = crate::escapes::neutralise_str(&one_line(m, 160));
                    what.push_str(&format!(" ({m})"));
                }
            }
            let ctx = context_pct
                .map(|p| format!(" · ctx {p:.0}%"))
                .unwrap_or_default();
            format!(
                "[{iteration}/{max_iterations}] {backend} · {} · {cost}{ctx} · {what}",
                fmt_secs(*duration_s)
            )
        }
        EventBody::GateFinished {
            name,
            passed,
            exit_code,
            timed_out,
            duration_s,
            ..
        } => {
            let verdict = if *passed {
                "passed".to_string()
            } else if *timed_out {
                "timed out".to_string()
            } else {
                match exit_code {
                    Some(c) => format!("failed (exit {c})"),
                    None => "failed (killed)".to_string(),
                }
            };
            format!("  gate {name}: {verdict} in {}", fmt_secs(*duration_s))
        }
        EventBody::CheckpointCreated { .. } | EventBody::StoryCommitted { .. } => return None,
        EventBody::RetryScheduled {
            delay_s,
            error_class,
            until,
            ..
        } => match until {
            Some(t) => format!(
                "  {error_class}: the agent's limit lifts at {t}; waiting {} (Ctrl-C stops)",
                fmt_secs(*delay_s)
            ),
            None => format!("  retrying in {} after {error_class}", fmt_secs(*delay_s)),
        },
        EventBody::AgentSwitched {
            from,
            to,
            model,
            reason,
            ..
        } => {
            let model = model
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            format!("ralph: {from} hit {reason}: switching to the fallback agent {to}{model}")
        }
        EventBody::Escalated {
            from,
            to,
            tier,
            reason,
            ..
        } => format!("ralph: escalated from {from} to tier {tier} ({to}): {reason}"),
        EventBody::Warning { message } => format!(
            "ralph: warning: {}",
            crate::escapes::neutralise_str(message)
        ),
        EventBody::NotesSummarised {
            accepted,
            tokens_before,
            tokens_after,
            cost_usd,
            ..
        } => {
            let cost = cost_usd
                .map(fmt_usd)
                .unwrap_or_else(|| "cost unknown".into());
            if *accepted {
                format!(
                    "  notes summarised by the agent: ~{tokens_before} → ~{tokens_after} tokens ({cost})"
                )
            } else {
                format!(
                    "  notes: the agent's summary was not shorter; dropped the oldest notes \
                     (~{tokens_before} → ~{tokens_after} tokens, {cost})"
                )
            }
        }
        EventBody::BudgetAlert {
            scope,
            fraction,
            spent,
            cap,
        } => {
            let (what, spent, cap) = match scope.as_str() {
                "run_tokens" => ("tokens", fmt_tokens(*spent as u64), fmt_tokens(*cap as u64)),
                "daily" => ("today's spend", fmt_usd(*spent), fmt_usd(*cap)),
                "monthly" => ("this month's spend", fmt_usd(*spent), fmt_usd(*cap)),
                _ => ("cost", fmt_usd(*spent), fmt_usd(*cap)),
            };
            format!(
                "ralph: budget: {what} reached {:.0}% of the cap ({spent} of {cap})",
                fraction * 100.0
            )
        }
        EventBody::RunFinished {
            message,
            iterations,
            elapsed_s,
            cost_usd,
            cost_unknown_iterations: unknown,
            tokens,
            ..
        } => {
            let total = tokens.input + tokens.output + tokens.cache_read + tokens.cache_write;
            let cost = cost_text(*cost_usd, *unknown, *iterations);
            let tokens = tokens_text(total, *unknown, *iterations);
            format!(
                "ralph: {} · {iterations} iteration{} · {} · {cost} · {tokens}",
                crate::escapes::neutralise_str(message),
                if *iterations == 1 { "" } else { "s" },
                fmt_secs(*elapsed_s),
            )
        }
    })
}

fn one_line(s: &str, max: usize) -> String {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() > max {
        let cut: String = line.chars().take(max).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

/// A run's cost, never an unreported one as $0: "cost unknown", or the known part plus how many
/// iterations nobody reported.
pub fn cost_text(cost_usd: f64, unknown: u32, iterations: u32) -> String {
    match (unknown, iterations) {
        (0, _) => fmt_usd(cost_usd),
        (u, n) if u >= n => "cost unknown".to_string(),
        (u, _) => format!("{} + {u} iteration(s) of unknown cost", fmt_usd(cost_usd)),
    }
}

/// A run's tokens: "tokens unknown" when no iteration reported any.
pub fn tokens_text(total: u64, unknown: u32, iterations: u32) -> String {
    if unknown >= iterations && total == 0 && iterations > 0 {
        "tokens unknown".to_string()
    } else {
        format!("{} tokens", fmt_tokens(total))
    }
}

#[cfg(test)]
mod tests {
    use ralph_core::Tokens;

    use super::*;

    fn finished(outcome: &str) -> RunEvent {
        RunEvent {
            run_id: "r".into(),
            story_id: None,
            ts: "2026-11-21T10:15:00Z".into(),
            body: EventBody::IterationFinished {
                iteration: 2,
                max_iterations: 5,
                backend: "claude".into(),
                outcome: outcome.into(),
                duration_s: 1.5,
                cost_usd: Some(0.01),
                cost_source: "agent".into(),
                tokens: None,
                files_changed: Some(1),
                insertions: Some(3),
                deletions: Some(0),
                error_class: None,
                error_message: None,
                total_cost_usd: 0.02,
                total_tokens: Tokens::default(),
                context_pct: None,
                unrestorable: Vec::new(),
                sandbox: "off".into(),
            },
        }
    }

    #[test]
    fn the_outcome_word_is_coloured_only_when_asked() {
        let plain = human_line(&finished("completed"), false).unwrap();
        assert_eq!(
            plain,
            "[2/5] claude · 1.5s · $0.0100 (total $0.0200) · completed, 1 file changed (+3 −0)"
        );
        assert!(!plain.contains('\x1b'));
        let coloured = human_line(&finished("completed"), true).unwrap();
        assert_eq!(
            coloured,
            plain.replace("completed", "\x1b[32mcompleted\x1b[0m")
        );
        let gates = human_line(&finished("gates_failed"), true).unwrap();
        assert!(gates.contains("\x1b[33mgates failed\x1b[0m"), "{gates}");
        let failed = human_line(&finished("failed"), true).unwrap();
        assert!(failed.contains("\x1b[31mfailed\x1b[0m"), "{failed}");
        let progressed = human_line(&finished("progressed"), true).unwrap();
        assert!(!progressed.contains('\x1b'), "{progressed}");
    }
}

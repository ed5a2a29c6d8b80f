//! `[loop]` (the prompt, the completion marker, the limits), `[context]` and `[retry]`.

use std::path::PathBuf;

use ralph_core::settings::{Limits, RetrySettings, RetryStrategy};
use toml_edit::TableLike;

use super::{entries, Entry, IntRule, Result, Walker};
use crate::config::duration::format_duration;
use crate::config::text::{found, quote, toml_string};
use crate::config::{ContextConf, LoopConf, PlanConf, RetryConf};

impl Walker<'_> {
    pub(crate) fn loop_(&mut self, table: &dyn TableLike) -> Result<LoopConf> {
        let mut conf = LoopConf::default();
        let defaults = Limits::default();
        for e in &entries("loop", table) {
            self.record(e);
            match e.name {
                "prompt_file" => {
                    conf.prompt_file = Some(PathBuf::from(self.nonempty_string(
                        e,
                        "PROMPT.md",
                        "remove the key to use PROMPT.md",
                    )?))
                }
                "completion_marker" => conf.completion_marker = Some(self.marker(e)?),
                "max_iterations" => conf.max_iterations = Some(self.max_iterations(e)?),
                "max_runtime" => conf.max_runtime = Some(self.max_runtime(e)?),
                "iteration_timeout" => {
                    conf.iteration_timeout =
                        Some(self.duration(e, false, defaults.iteration_timeout)?)
                }
                "idle_timeout" => {
                    conf.idle_timeout = Some(self.duration(e, false, defaults.idle_timeout)?)
                }
                "max_consecutive_failures" => {
                    conf.max_consecutive_failures = Some(self.whole_u32(
                        e,
                        IntRule {
                            min: 1,
                            max: i64::from(u32::MAX),
                            example: 5,
                            below_min_hint: "1 gives up at the first failure; remove the key for \
                                             the default (5)",
                        },
                    )?)
                }
                _ => return Err(self.unknown_key(e, "loop")),
            }
        }
        Ok(conf)
    }

    /// `loop.max_iterations`, and the same limit per story in stories.toml.
    pub(crate) fn max_iterations(&self, e: &Entry) -> Result<u32> {
        self.whole_u32(
            e,
            IntRule {
                min: 1,
                max: i64::from(u32::MAX),
                example: 10,
                below_min_hint: "at least one iteration is needed; remove the key for the \
                                 default (100)",
            },
        )
    }

    /// `loop.max_runtime`, and the same limit per story in stories.toml.
    pub(crate) fn max_runtime(&self, e: &Entry) -> Result<std::time::Duration> {
        self.duration(e, false, Limits::default().max_runtime)
    }

    pub(crate) fn marker(&self, e: &Entry) -> Result<String> {
        let s = self.string(e, "LOOP_COMPLETE")?;
        let fix = |hint: &str| format!("{hint}, e.g. completion_marker = \"LOOP_COMPLETE\"");
        if s.trim().is_empty() {
            return Err(self.bad(
                e,
                format!("expected a non-empty marker, found {}", found(e.item)),
                fix("write a word the agent would not print by accident"),
            ));
        }
        if s.contains(['\n', '\r']) {
            return Err(self.bad(
                e,
                format!("the marker must be a single line, found {}", found(e.item)),
                fix("the agent prints the marker on a line of its own; use one line"),
            ));
        }
        if s.trim() != s {
            return Err(self.bad(
                e,
                format!("the marker has spaces around it: {}", quote(s)),
                format!("write completion_marker = {}", toml_string(s.trim())),
            ));
        }
        Ok(s.to_string())
    }

    pub(crate) fn context(&mut self, table: &dyn TableLike) -> Result<ContextConf> {
        let mut conf = ContextConf::default();
        for e in &entries("context", table) {
            self.record(e);
            match e.name {
                "notes_max_tokens" => {
                    let n = self.whole(
                        e,
                        IntRule {
                            min: 100,
                            max: i64::from(u32::MAX),
                            example: 2000,
                            below_min_hint: "notes under 100 tokens cannot say anything useful; \
                                             remove the key for the default (2000)",
                        },
                    )?;
                    conf.notes_max_tokens = Some(u64::try_from(n).unwrap_or(2000));
                }
                "summary_model" => {
                    let m = self.string(e, "claude-haiku-4-5")?;
                    // An empty string (the template's value) means "the agent's own model".
                    conf.summary_model = (!m.trim().is_empty()).then(|| m.to_string());
                }
                _ => return Err(self.unknown_key(e, "context")),
            }
        }
        Ok(conf)
    }

    /// `[plan]`: `ralph plan`'s attempts per phase, default template and design directory.
    pub(crate) fn plan(&mut self, table: &dyn TableLike) -> Result<PlanConf> {
        let mut conf = PlanConf::default();
        for e in &entries("plan", table) {
            self.record(e);
            match e.name {
                "max_attempts" => {
                    let n = self.whole(
                        e,
                        IntRule {
                            min: 1,
                            max: 20,
                            example: 3,
                            below_min_hint: "every phase needs at least one attempt",
                        },
                    )?;
                    conf.max_attempts = Some(u32::try_from(n).unwrap_or(3));
                }
                "architecture" => {
                    conf.architecture = Some(self.nonempty_string(
                        e,
                        "layered-4",
                        "name a template (ralph templates list)",
                    )?)
                }
                "design_dir" => {
                    conf.design_dir = Some(PathBuf::from(self.nonempty_string(
                        e,
                        "docs/design",
                        "a directory relative to the project root",
                    )?))
                }
                _ => return Err(self.unknown_key(e, "plan")),
            }
        }
        Ok(conf)
    }

    pub(crate) fn retry(&mut self, table: &dyn TableLike) -> Result<RetryConf> {
        let mut conf = RetryConf::default();
        let defaults = RetrySettings::default();
        let mut base_entry = None;
        let mut max_entry = None;
        let all = entries("retry", table);
        for e in &all {
            self.record(e);
            match e.name {
                "strategy" => {
                    conf.strategy = Some(
                        match self.choice(e, super::RETRY_STRATEGIES, "exponential")? {
                            "immediate" => RetryStrategy::Immediate,
                            "linear" => RetryStrategy::Linear,
                            _ => RetryStrategy::Exponential,
                        },
                    )
                }
                "base_delay" => {
                    conf.base_delay = Some(self.duration(e, true, defaults.base_delay)?);
                    base_entry = Some(e);
                }
                "max_delay" => {
                    conf.max_delay = Some(self.duration(e, true, defaults.max_delay)?);
                    max_entry = Some(e);
                }
                _ => return Err(self.unknown_key(e, "retry")),
            }
        }
        // Checked against the defaults too: there are no flags for these, so the values
        // checked here are the values the engine will use.
        let base = conf.base_delay.unwrap_or(defaults.base_delay);
        let max = conf.max_delay.unwrap_or(defaults.max_delay);
        if max < base {
            let (b, m) = (format_duration(base), format_duration(max));
            let err = match (base_entry, max_entry) {
                (_, Some(me)) if conf.max_delay.is_some() && conf.base_delay.is_some() => self.bad(
                    me,
                    format!("max_delay ({m}) is shorter than base_delay ({b})"),
                    format!("write max_delay = \"{b}\" or more, or lower base_delay"),
                ),
                (_, Some(me)) => self.bad(
                    me,
                    format!("max_delay ({m}) is shorter than the default base_delay ({b})"),
                    format!("write max_delay = \"{b}\" or more, or set a lower base_delay"),
                ),
                (Some(be), _) => self.bad(
                    be,
                    format!("base_delay ({b}) is longer than the default max_delay ({m})"),
                    format!("also set max_delay = \"{b}\" (or more), or lower base_delay"),
                ),
                (None, None) => return Ok(conf),
            };
            return Err(err);
        }
        Ok(conf)
    }
}

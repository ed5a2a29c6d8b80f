//! `[[gates]]`: the commands that verify a claimed completion.

use std::ops::Range;

use ralph_core::settings::{Gate, GateWhen};
use toml_edit::{Item, TableLike, Value};

use super::{entries, Entry, Result, Walker};
use crate::config::text::{found, found_value, line_col, quote, toml_string};
use crate::config::DEFAULT_GATE_TIMEOUT;

impl Walker<'_> {
    pub(crate) fn gates(&mut self, e: &Entry) -> Result<Vec<Gate>> {
        // `[[gates]]` blocks, or `gates = [{ … }, { … }]`.
        let tables: Vec<(&dyn TableLike, Option<Range<usize>>)> = match e.item {
            Item::ArrayOfTables(a) => a.iter().map(|t| (t as &dyn TableLike, t.span())).collect(),
            Item::Value(Value::Array(a)) => {
                let mut v: Vec<(&dyn TableLike, Option<Range<usize>>)> = Vec::new();
                for (i, item) in a.iter().enumerate() {
                    match item {
                        Value::InlineTable(t) => v.push((t as &dyn TableLike, t.span())),
                        other => {
                            return Err(self.error(
                                other.span(),
                                Some(format!("gates[{i}]")),
                                format!("expected a table for each gate, found {}", found_value(other)),
                                "write each gate as a [[gates]] block with name = \"…\" and run = \"…\"",
                            ))
                        }
                    }
                }
                v
            }
            other => {
                return Err(self.bad(
                    e,
                    format!(
                        "expected an array of tables [[gates]], found {}",
                        found(other)
                    ),
                    "write [[gates]] (double brackets) above every gate",
                ))
            }
        };
        let mut gates: Vec<Gate> = Vec::new();
        let mut names: Vec<(String, usize)> = Vec::new();
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let section = format!("gates[{i}]");
            let gate = self.gate(&section, table, span.clone())?;
            let name_entry = entries(&section, table)
                .into_iter()
                .find(|e| e.name == "name");
            let name_line = name_entry
                .as_ref()
                .and_then(Entry::span)
                .map_or(0, |s| line_col(self.src, s.start).0);
            if let Some((_, first_line)) = names.iter().find(|(n, _)| *n == gate.name) {
                let err_span = name_entry.as_ref().and_then(Entry::span).or(span);
                return Err(self.error(
                    err_span,
                    Some(format!("{section}.name")),
                    format!(
                        "duplicate gate name {} (also used by the gate on line {first_line})",
                        quote(&gate.name)
                    ),
                    "give each gate its own name: it names the log file gate-<name>.log",
                ));
            }
            names.push((gate.name.clone(), name_line));
            gates.push(gate);
        }
        Ok(gates)
    }

    pub(crate) fn gate(
        &mut self,
        section: &str,
        table: &dyn TableLike,
        span: Option<Range<usize>>,
    ) -> Result<Gate> {
        let mut name = None;
        let mut run = None;
        let mut when = GateWhen::Complete;
        let mut timeout = DEFAULT_GATE_TIMEOUT;
        for e in &entries(section, table) {
            self.record(e);
            match e.name {
                "name" => name = Some(self.gate_name(e)?),
                "run" => {
                    run = Some(self.nonempty_string(
                        e,
                        "cargo test",
                        "write the shell command to run, e.g. run = \"cargo test\"",
                    )?)
                }
                "when" => {
                    when = match self.choice(e, super::GATE_WHENS, "complete")? {
                        "iteration" => GateWhen::Iteration,
                        "pre-story" => GateWhen::PreStory,
                        "post-story" => GateWhen::PostStory,
                        "pre-merge" => GateWhen::PreMerge,
                        _ => GateWhen::Complete,
                    }
                }
                "timeout" => timeout = self.duration(e, false, DEFAULT_GATE_TIMEOUT)?,
                _ => return Err(self.unknown_key(e, "gates")),
            }
        }
        let missing = |key: &str, hint: &str| {
            self.error(
                span.clone(),
                Some(format!("{section}.{key}")),
                format!("this gate has no `{key}`"),
                hint,
            )
        };
        let name = name.ok_or_else(|| {
            missing(
                "name",
                "add name = \"tests\" (it names the log file gate-tests.log)",
            )
        })?;
        let run = run.ok_or_else(|| {
            missing(
                "run",
                "add run = \"cargo test\": the command run by sh -c in the project",
            )
        })?;
        Ok(Gate {
            name,
            run,
            when,
            timeout,
        })
    }

    pub(crate) fn gate_name(&self, e: &Entry) -> Result<String> {
        let s = self.string(e, "tests")?;
        if s.is_empty() {
            return Err(self.bad(
                e,
                "expected a gate name, found an empty string",
                "write name = \"tests\" (it names the log file gate-tests.log)",
            ));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if !s.chars().all(ok) {
            let fixed: String = s.chars().map(|c| if ok(c) { c } else { '-' }).collect();
            return Err(self.bad(
                e,
                format!(
                    "gate name {} may only contain letters, digits, `_`, `.` and `-`",
                    quote(s)
                ),
                format!(
                    "it becomes the log file name gate-<name>.log; write name = {}",
                    toml_string(&fixed)
                ),
            ));
        }
        Ok(s.to_string())
    }
}

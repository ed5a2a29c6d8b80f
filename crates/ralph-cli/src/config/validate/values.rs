//! Checks of single values shared by every section: booleans, strings and lists of them,
//! choices, whole numbers in a range, durations.

use std::time::Duration;

use toml_edit::Value;

use super::{Entry, IntRule, RawText, Result, Walker};
use crate::config::duration::{format_duration, parse_detailed};
use crate::config::text::{found, found_value, quote, suggest, toml_string};

impl Walker<'_> {
    pub(crate) fn boolean(&self, e: &Entry, example: &str) -> Result<bool> {
        match e.item.as_value() {
            Some(Value::Boolean(b)) => Ok(*b.value()),
            _ => Err(self.bad(
                e,
                format!("expected true or false, found {}", found(e.item)),
                format!("write {} = {example} (no quotes)", e.name),
            )),
        }
    }

    pub(crate) fn string<'i>(&self, e: &Entry<'i>, example: &str) -> Result<&'i str> {
        match e.item.as_value() {
            Some(Value::String(s)) => Ok(s.value()),
            Some(
                v @ (Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Datetime(_)),
            ) => {
                let raw = v.to_string_lossy(self.src);
                Err(self.bad(
                    e,
                    format!("expected a string, found {}", found(e.item)),
                    format!("write {} = {} (in quotes)", e.name, toml_string(&raw)),
                ))
            }
            _ => Err(self.bad(
                e,
                format!("expected a string, found {}", found(e.item)),
                format!("write {} = {}", e.name, toml_string(example)),
            )),
        }
    }

    pub(crate) fn nonempty_string(
        &self,
        e: &Entry,
        example: &str,
        empty_hint: &str,
    ) -> Result<String> {
        let s = self.string(e, example)?;
        if s.trim().is_empty() {
            return Err(self.bad(
                e,
                format!("expected a non-empty string, found {}", found(e.item)),
                empty_hint,
            ));
        }
        Ok(s.to_string())
    }

    /// An array of strings; `example` is used in hints.
    pub(crate) fn strings(&self, e: &Entry, example: &[&str]) -> Result<Vec<String>> {
        let example_array = |items: &[&str]| {
            let quoted: Vec<String> = items.iter().map(|s| toml_string(s)).collect();
            format!("[{}]", quoted.join(", "))
        };
        match e.item.as_value() {
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s.value().clone()),
                        other => {
                            let quoted: Vec<String> = a
                                .iter()
                                .map(|v| match v {
                                    Value::String(s) => s.value().clone(),
                                    v => v.to_string_lossy(self.src),
                                })
                                .collect();
                            let quoted: Vec<&str> = quoted.iter().map(String::as_str).collect();
                            return Err(self.error(
                                other.span(),
                                Some(format!("{}[{i}]", e.path())),
                                format!("expected a string, found {}", found_value(other)),
                                format!(
                                    "quote every item: {} = {}",
                                    e.name,
                                    example_array(&quoted)
                                ),
                            ));
                        }
                    }
                }
                Ok(out)
            }
            Some(Value::String(s)) => {
                let words: Vec<&str> = s.value().split_whitespace().collect();
                let suggestion = if words.is_empty() {
                    example.to_vec()
                } else {
                    words
                };
                Err(self.bad(
                    e,
                    format!("expected an array of strings, found {}", found(e.item)),
                    format!("write {} = {}", e.name, example_array(&suggestion)),
                ))
            }
            _ => Err(self.bad(
                e,
                format!("expected an array of strings, found {}", found(e.item)),
                format!("write {} = {}", e.name, example_array(example)),
            )),
        }
    }

    pub(crate) fn no_empty_items(&self, e: &Entry, items: &[String], what: &str) -> Result<()> {
        if let (Some(i), Some(Value::Array(a))) = (
            items.iter().position(|s| s.trim().is_empty()),
            e.item.as_value(),
        ) {
            return Err(self.error(
                a.get(i).and_then(Value::span),
                Some(format!("{}[{i}]", e.path())),
                "expected a non-empty string, found an empty string",
                format!("remove the empty item or write {what}"),
            ));
        }
        Ok(())
    }

    /// One of `choices`. Returns the matching `&'static str` so callers can `match` on it.
    pub(crate) fn choice(
        &self,
        e: &Entry,
        choices: &[&'static str],
        example: &str,
    ) -> Result<&'static str> {
        let list: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
        let list = list.join(", ");
        let s = self.string(e, example).map_err(|_| {
            self.bad(
                e,
                format!("expected one of {list}, found {}", found(e.item)),
                format!("write {} = \"{example}\"", e.name),
            )
        })?;
        if let Some(c) = choices.iter().find(|c| **c == s) {
            return Ok(c);
        }
        let hint = match suggest(s, choices) {
            Some(c) => format!("did you mean \"{c}\"? write {} = \"{c}\"", e.name),
            None => format!("write {} = \"{example}\"", e.name),
        };
        Err(self.bad(
            e,
            format!("expected one of {list}, found {}", found(e.item)),
            hint,
        ))
    }

    pub(crate) fn whole_u32(&self, e: &Entry, rule: IntRule) -> Result<u32> {
        let n = self.whole(e, rule)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    pub(crate) fn whole(&self, e: &Entry, rule: IntRule) -> Result<i64> {
        let expected = format!("expected a whole number ≥ {}", rule.min);
        let name = e.name;
        match e.item.as_value() {
            Some(Value::Integer(i)) => {
                let n = *i.value();
                if n < rule.min {
                    return Err(self.bad(
                        e,
                        format!("{expected}, found {}", found(e.item)),
                        rule.below_min_hint,
                    ));
                }
                if n > rule.max {
                    return Err(self.bad(
                        e,
                        format!(
                            "expected a whole number ≤ {}, found {}",
                            rule.max,
                            found(e.item)
                        ),
                        format!("write {name} = {}", rule.example),
                    ));
                }
                Ok(n)
            }
            Some(Value::Float(f)) => {
                let f = *f.value();
                let hint = if f.is_finite()
                    && f.fract() == 0.0
                    && f >= rule.min as f64
                    && f <= rule.max as f64
                {
                    format!("write {name} = {} (no decimal point)", f as i64)
                } else {
                    format!("write a whole number, e.g. {name} = {}", rule.example)
                };
                Err(self.bad(e, format!("{expected}, found {}", found(e.item)), hint))
            }
            Some(Value::String(s)) => {
                let number = s.value().trim().replace('_', "").parse::<i64>().ok();
                let n = number
                    .filter(|n| (rule.min..=rule.max).contains(n))
                    .unwrap_or(rule.example);
                Err(self.bad(
                    e,
                    format!("{expected}, found {}", found(e.item)),
                    format!("write {name} = {n} (no quotes)"),
                ))
            }
            _ => Err(self.bad(
                e,
                format!("{expected}, found {}", found(e.item)),
                format!("write {name} = {}", rule.example),
            )),
        }
    }

    pub(crate) fn duration(
        &self,
        e: &Entry,
        allow_zero: bool,
        default: Duration,
    ) -> Result<Duration> {
        let name = e.name;
        let units = "a number with a unit: ms, s, m, h or d, combined as in \"1h30m\"";
        let example = format!("write {name} = \"{}\" ({units})", format_duration(default));
        match e.item.as_value() {
            Some(Value::String(s)) => match parse_detailed(s.value()) {
                Ok(d) if d.is_zero() && !allow_zero => Err(self.bad(
                    e,
                    format!(
                        "expected a duration longer than 0s, found {}",
                        found(e.item)
                    ),
                    format!(
                        "a zero limit would stop at once; remove the key for the default ({})",
                        format_duration(default)
                    ),
                )),
                Ok(d) => Ok(d),
                Err(err) => {
                    let hint = match err.fix {
                        Some(fix) => format!("write {name} = \"{fix}\" ({units})"),
                        None => example,
                    };
                    Err(self.bad(
                        e,
                        format!("invalid duration {}: {}", quote(s.value()), err.reason),
                        hint,
                    ))
                }
            },
            Some(Value::Integer(i)) if *i.value() > 0 => Err(self.bad(
                e,
                format!(
                    "expected a duration string such as \"30m\", found {}",
                    found(e.item)
                ),
                format!("write {name} = \"{}s\" ({units})", i.value()),
            )),
            _ => Err(self.bad(
                e,
                format!(
                    "expected a duration string such as \"30m\", found {}",
                    found(e.item)
                ),
                example,
            )),
        }
    }
}

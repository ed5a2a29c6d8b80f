//! `[budget]` and `[pricing."model"]`: caps, alerts, the ledger, prices.

use std::collections::BTreeMap;
use std::path::PathBuf;

use toml_edit::{TableLike, Value};

use super::{entries, toml_key, Entry, IntRule, Result, Walker};
use crate::config::text::{found, found_value};
use crate::config::{BudgetConf, PriceConf};

impl Walker<'_> {
    pub(crate) fn budget(&mut self, table: &dyn TableLike) -> Result<BudgetConf> {
        let mut conf = BudgetConf::default();
        for e in &entries("budget", table) {
            self.record(e);
            match e.name {
                "max_cost_usd" => conf.max_cost_usd = Some(self.usd(e)?),
                "max_tokens" => conf.max_tokens = Some(self.max_tokens(e)?),
                "daily_usd" => conf.daily_usd = Some(self.usd(e)?),
                "monthly_usd" => conf.monthly_usd = Some(self.usd(e)?),
                "alert_at" => conf.alert_at = Some(self.fractions(e)?),
                "stop_before_exceeding" => {
                    conf.stop_before_exceeding = Some(self.boolean(e, "true")?)
                }
                "allow_unenforced" => conf.allow_unenforced = Some(self.boolean(e, "true")?),
                "iteration_estimate_usd" => conf.iteration_estimate_usd = Some(self.usd(e)?),
                "ledger" => {
                    conf.ledger = Some(PathBuf::from(self.nonempty_string(
                        e,
                        "~/.local/share/ralph/ledger.db",
                        "remove the key to use $RALPH_HOME or the XDG data directory",
                    )?))
                }
                _ => return Err(self.unknown_key(e, "budget")),
            }
        }
        Ok(conf)
    }

    /// `budget.max_tokens`, and the same limit per story in stories.toml.
    pub(crate) fn max_tokens(&self, e: &Entry) -> Result<u64> {
        let n = self.whole(
            e,
            IntRule {
                min: 1,
                max: i64::MAX,
                example: 5_000_000,
                below_min_hint: "remove the key for no token limit",
            },
        )?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    /// `[pricing."model"]`: per-model prices in USD per million tokens, overriding or adding
    /// to the built-in table.
    pub(crate) fn pricing(&mut self, table: &dyn TableLike) -> Result<BTreeMap<String, PriceConf>> {
        let mut out = BTreeMap::new();
        // Entry paths borrow their section name; build the names first.
        let names: Vec<(String, String)> = table
            .iter()
            .map(|(model, _)| (model.to_string(), format!("pricing.{}", toml_key(model))))
            .collect();
        for ((model, path), e) in names.iter().zip(entries("pricing", table)) {
            self.record(&e);
            let Some(inner) = e.item.as_table_like() else {
                return Err(self.bad(
                    &e,
                    format!("expected a table of prices, found {}", found(e.item)),
                    format!(
                        "write [{path}] with input = 3.0 and output = 15.0 (USD per million tokens)"
                    ),
                ));
            };
            let mut price = PriceConf::default();
            for pe in &entries(path, inner) {
                self.record(pe);
                match pe.name {
                    "input" => price.input = Some(self.per_mtok(pe)?),
                    "output" => price.output = Some(self.per_mtok(pe)?),
                    "cache_read" => price.cache_read = Some(self.per_mtok(pe)?),
                    "cache_write" => price.cache_write = Some(self.per_mtok(pe)?),
                    "context_window" => {
                        let n = self.whole(
                            pe,
                            IntRule {
                                min: 1,
                                max: i64::MAX,
                                example: 200_000,
                                below_min_hint: "remove the key if the window is not known",
                            },
                        )?;
                        price.context_window = Some(u64::try_from(n).unwrap_or(u64::MAX));
                    }
                    _ => return Err(self.unknown_key(pe, "pricing")),
                }
            }
            out.insert(model.clone(), price);
        }
        Ok(out)
    }

    /// `alert_at`: fractions of a cap, each in (0, 1], in ascending order.
    pub(crate) fn fractions(&self, e: &Entry) -> Result<Vec<f64>> {
        let hint = "write alert_at = [0.5, 0.8, 1.0] (fractions of the cap, ascending)";
        let Some(Value::Array(items)) = e.item.as_value() else {
            return Err(self.bad(
                e,
                format!("expected an array of fractions, found {}", found(e.item)),
                hint,
            ));
        };
        let mut out: Vec<f64> = Vec::new();
        for (i, v) in items.iter().enumerate() {
            let f = match v {
                Value::Float(f) => *f.value(),
                Value::Integer(n) => *n.value() as f64,
                _ => f64::NAN,
            };
            let ok = f.is_finite() && f > 0.0 && f <= 1.0 && out.last().is_none_or(|p| *p < f);
            if !ok {
                return Err(self.error(
                    v.span(),
                    Some(format!("{}[{i}]", e.path())),
                    format!(
                        "expected a fraction above the previous one and at most 1, found {}",
                        found_value(v)
                    ),
                    hint,
                ));
            }
            out.push(f);
        }
        Ok(out)
    }

    /// A price in USD per million tokens: a number ≥ 0 (free models exist).
    pub(crate) fn per_mtok(&self, e: &Entry) -> Result<f64> {
        let value = match e.item.as_value() {
            Some(Value::Float(f)) => Some(*f.value()),
            Some(Value::Integer(i)) => Some(*i.value() as f64),
            _ => None,
        };
        match value {
            Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(self.bad(
                e,
                format!(
                    "expected a price in US dollars per million tokens (a number ≥ 0), found {}",
                    found(e.item)
                ),
                format!("write {} = 3.0", e.name),
            )),
        }
    }

    pub(crate) fn usd(&self, e: &Entry) -> Result<f64> {
        let expected = "expected an amount of US dollars greater than 0";
        let example = match e.name {
            "daily_usd" => "100.0",
            "monthly_usd" => "1000.0",
            "iteration_estimate_usd" => "0.5",
            _ => "25.0",
        };
        let without = match e.name {
            "iteration_estimate_usd" => "to estimate from recent iterations",
            _ => "for no limit",
        };
        let hint_example = format!("write {} = {example}, or remove the key {without}", e.name);
        let hint_example = hint_example.as_str();
        let value = match e.item.as_value() {
            Some(Value::Float(f)) => *f.value(),
            Some(Value::Integer(i)) => *i.value() as f64,
            Some(Value::String(s)) => {
                let t = s.value().trim();
                let amount = t.trim_start_matches('$').trim().parse::<f64>().ok();
                let hint = match amount.filter(|a| a.is_finite() && *a > 0.0) {
                    Some(a) => format!(
                        "write {} = {} (no quotes, no $)",
                        e.name,
                        crate::config::text::float(a)
                    ),
                    None => hint_example.to_string(),
                };
                return Err(self.bad(e, format!("{expected}, found {}", found(e.item)), hint));
            }
            _ => {
                return Err(self.bad(
                    e,
                    format!("{expected}, found {}", found(e.item)),
                    hint_example,
                ))
            }
        };
        if !value.is_finite() || value <= 0.0 {
            return Err(self.bad(
                e,
                format!("{expected}, found {}", found(e.item)),
                hint_example,
            ));
        }
        Ok(value)
    }
}

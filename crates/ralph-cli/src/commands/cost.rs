//! `ralph cost`: what the agents cost, grouped by run, day, model, backend or project; from this
//! project's database, or with `--all-projects` from the user-level ledger every ralph on the
//! machine writes to (where `budget.ledger` says, else `$RALPH_HOME/ledger.db`…: see
//! [`crate::paths::ledger_path`], which `ralph run` uses too).
//!
//! Sums come from SQL over the per-iteration values, so a total matches its iterations; agent
//! calls that are not iterations (notes summaries) are paid for too, so they are in the cost
//! and tokens, counted as `side_calls`, as in the run's totals (`ralph status`). An
//! iteration whose cost nobody reported or could compute is never shown as $0: it is counted
//! apart (`unknown_cost_iterations`) and the table says "cost unknown".

use std::io::Write;

use chrono::{Local, NaiveDate};
use ralph_store::ledger::{local_date_start, to_utc_rfc3339};
use ralph_store::{CostGroup, CostReport, CostRow, Ledger, Store, Tokens};
use ralph_types::exit_codes;
use serde_json::{json, Value};

use crate::cli::{CostArgs, CostBy};
use crate::error::CliError;
use crate::paths;
use crate::render::{fmt_tokens, fmt_usd};
use crate::settings::load_config;

impl CostBy {
    fn group(self) -> CostGroup {
        match self {
            CostBy::Day => CostGroup::Day,
            CostBy::Model => CostGroup::Model,
            CostBy::Run => CostGroup::Run,
            CostBy::Backend => CostGroup::Backend,
            CostBy::Project => CostGroup::Project,
            CostBy::Story => CostGroup::Story,
        }
    }
}

pub fn cmd_cost(args: CostArgs) -> Result<i32, CliError> {
    let by = args.by.unwrap_or(CostBy::Run);
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let cwd = paths::cwd()?;
    let report = if args.all_projects {
        // `ralph run` records where budget.ledger says, so that is where to read.
        let cfg = load_config(args.config.as_deref(), &cwd)?;
        let path = paths::ledger_path(
            cfg.budget.ledger.as_deref(),
            &paths::DataHomeEnv::from_process(),
            &cwd,
        )
        .ok_or_else(|| {
            CliError::usage(
                "cannot tell where the cost ledger is: budget.ledger, RALPH_HOME, \
                 XDG_DATA_HOME and HOME are all unset",
                Some("set RALPH_HOME to ralph's user-level data directory".to_string()),
            )
        })?;
        if !path.exists() {
            None
        } else {
            let ledger_err = |e: ralph_store::StoreError| {
                CliError::new(
                    exit_codes::INTERNAL_ERROR,
                    e.to_string(),
                    Some(format!(
                        "the cost ledger is {}; if it is damaged, move it aside (ralph starts \
                         a new one, and daily and monthly budgets start from zero)",
                        path.display()
                    )),
                )
            };
            let ledger = Ledger::open_read_only(&path).map_err(ledger_err)?;
            Some(
                ledger
                    .cost_report(by.group(), since.as_deref())
                    .map_err(ledger_err)?,
            )
        }
    } else {
        let db = cwd.join(".ralph").join("ralph.db");
        if !db.exists() {
            None
        } else {
            let store = Store::open_read_only(&db)?;
            let mut report = store.cost_report(by.group(), since.as_deref())?;
            if by == CostBy::Project {
                // The project's own database has no project column: name the project as the
                // ledger does, by its canonical root.
                let root = std::fs::canonicalize(&cwd).unwrap_or_else(|_| cwd.clone());
                for row in &mut report.rows {
                    row.key = root.display().to_string();
                }
            }
            Some(report)
        }
    };
    let report = report.unwrap_or_else(|| CostReport {
        by: by.group(),
        rows: Vec::new(),
        total: CostRow {
            key: "total".to_string(),
            ..CostRow::default()
        },
    });
    if args.json {
        outln!("{}", to_json(&report, args.all_projects, since.as_deref()));
        return Ok(exit_codes::SUCCESS);
    }
    if report.rows.is_empty() {
        let scope = if args.all_projects {
            "on this machine"
        } else {
            "in this project"
        };
        match &args.since {
            Some(s) => eprintln!("ralph: no iterations {scope} since {s}"),
            None if args.all_projects => {
                eprintln!("ralph: no cost recorded {scope} yet")
            }
            None => eprintln!("ralph: no runs {scope} yet; start one with `ralph run`"),
        }
        return Ok(exit_codes::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(table(&report).as_bytes());
    Ok(exit_codes::SUCCESS)
}

/// `--since`: a local date (its midnight) or an RFC3339 time, as RFC3339 UTC.
fn parse_since(s: &str) -> Result<String, CliError> {
    let t = s.trim();
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(local_date_start(&Local, date));
    }
    to_utc_rfc3339(t).ok_or_else(|| {
        CliError::usage(
            format!("--since {s}: not a date or time"),
            Some(
                "use a local date like 2025-01-31, or an RFC3339 time like \
                 2025-01-31T09:00:00Z"
                    .to_string(),
            ),
        )
    })
}

/// Costs in JSON without float noise (0.0369, not 0.036899999999999995); 1e-10 USD is far
/// below any price.
fn usd(v: f64) -> f64 {
    (v * 1e10).round() / 1e10
}

fn tokens_json(t: &Tokens) -> Value {
    json!({
        "input": t.input,
        "output": t.output,
        "cache_read": t.cache_read,
        "cache_write": t.cache_write,
    })
}

fn to_json(report: &CostReport, all_projects: bool, since: Option<&str>) -> Value {
    let rows: Vec<Value> = report
        .rows
        .iter()
        .map(|r| {
            let mut v = json!({
                "key": r.key,
                "cost_usd": usd(r.cost_usd),
                "iterations": r.iterations,
                "side_calls": r.side_calls,
                "unknown_cost_iterations": r.unknown_cost_iterations,
                "invalid_cost_iterations": r.invalid_cost_iterations,
                "tokens": tokens_json(&r.tokens),
                "first_at": r.first_ts,
                "last_at": r.last_ts,
            });
            if let (Some(p), Value::Object(map)) = (&r.project, &mut v) {
                map.insert("project".to_string(), json!(p));
            }
            v
        })
        .collect();
    let t = &report.total;
    json!({
        "version": 1,
        "scope": if all_projects { "all_projects" } else { "project" },
        "since": since,
        "by": report.by.as_str(),
        "total_usd": usd(t.cost_usd),
        "iterations": t.iterations,
        "side_calls": t.side_calls,
        "unknown_cost_iterations": t.unknown_cost_iterations,
        "invalid_cost_iterations": t.invalid_cost_iterations,
        "tokens": tokens_json(&t.tokens),
        "rows": rows,
    })
}

fn cost_cell(r: &CostRow) -> String {
    match r.unknown_cost_iterations {
        0 => fmt_usd(r.cost_usd),
        u if u >= r.iterations => "cost unknown".to_string(),
        u => format!("{} + {u} unknown", fmt_usd(r.cost_usd)),
    }
}

/// The human table: one line per row, then the total.
fn table(report: &CostReport) -> String {
    let with_project = report.rows.iter().any(|r| r.project.is_some());
    let header = {
        let mut h = vec![report.by.as_str().to_string()];
        if with_project {
            h.push("project".to_string());
        }
        h.extend(["iterations", "cost", "tokens"].map(String::from));
        h
    };
    let line = |r: &CostRow, key: &str| {
        let mut cells = vec![key.to_string()];
        if with_project {
            cells.push(r.project.clone().unwrap_or_default());
        }
        cells.push(r.iterations.to_string());
        cells.push(cost_cell(r));
        cells.push(fmt_tokens(r.tokens.total()));
        cells
    };
    let mut lines = vec![header];
    lines.extend(report.rows.iter().map(|r| line(r, &r.key)));
    lines.push(line(&report.total, "total"));
    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Text columns (the key, the project) to the left, numbers to the right.
    let text_columns = if with_project { 2 } else { 1 };
    let mut out = String::new();
    for cells in &lines {
        let mut text = String::new();
        for (c, cell) in cells.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c > 0 {
                text.push_str("  ");
            }
            if c < text_columns {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', pad));
            } else {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(cell);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    let side = report.total.side_calls;
    if side > 0 {
        out.push_str(&format!(
            "the cost and tokens include {side} agent call{} that {} not an iteration (notes \
             summaries)\n",
            if side == 1 { "" } else { "s" },
            if side == 1 { "is" } else { "are" },
        ));
    }
    let invalid = report.total.invalid_cost_iterations;
    if invalid > 0 {
        out.push_str(&format!(
            "{invalid} agent call{} reported a cost or tokens no call can have (negative, not \
             finite, over ${} or {} tokens): recorded as invalid, counted as unknown\n",
            if invalid == 1 { "" } else { "s" },
            ralph_types::plausible::MAX_CALL_COST_USD,
            ralph_types::plausible::MAX_CALL_TOKENS,
        ));
    }
    let unknown = report.total.unknown_cost_iterations;
    if unknown > 0 {
        let what = if side > 0 { "agent call" } else { "iteration" };
        out.push_str(&format!(
            "{unknown} {what}{} of unknown cost (no cost reported and no price known for the \
             model) {} not in the totals\n",
            if unknown == 1 { "" } else { "s" },
            if unknown == 1 { "is" } else { "are" },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, cost: f64, iterations: u32, unknown: u32) -> CostRow {
        CostRow {
            key: key.into(),
            project: None,
            cost_usd: cost,
            iterations,
            side_calls: 0,
            unknown_cost_iterations: unknown,
            invalid_cost_iterations: 0,
            tokens: Tokens {
                input: 1000,
                output: 100,
                cache_read: 0,
                cache_write: 0,
            },
            first_ts: String::new(),
            last_ts: String::new(),
        }
    }

    #[test]
    fn table_is_aligned_with_a_total_and_says_cost_unknown() {
        let report = CostReport {
            by: CostGroup::Run,
            rows: vec![
                row("20250102-100000-ab12", 0.0369, 3, 0),
                row("r2", 0.0, 1, 1),
                row("r3", 0.5, 2, 1),
            ],
            total: row("total", 0.5369, 6, 2),
        };
        let t = table(&report);
        assert_eq!(
            t,
            "run                   iterations                 cost  tokens\n\
             20250102-100000-ab12           3              $0.0369    1100\n\
             r2                             1         cost unknown    1100\n\
             r3                             2  $0.5000 + 1 unknown    1100\n\
             total                          6  $0.5369 + 2 unknown    1100\n\
             2 iterations of unknown cost (no cost reported and no price known for the model) \
             are not in the totals\n"
        );
    }

    #[test]
    fn json_has_the_contract_fields_and_no_float_noise() {
        let report = CostReport {
            by: CostGroup::Day,
            rows: vec![row("2025-01-02", 0.0123 + 0.0123 + 0.0123, 3, 0)],
            total: row("total", 0.036899999999999995, 3, 0),
        };
        let v = to_json(&report, false, None);
        assert_eq!(v["version"], 1);
        assert_eq!(v["by"], "day");
        assert_eq!(v["total_usd"], 0.0369);
        assert_eq!(v["rows"][0]["cost_usd"], 0.0369);
        assert_eq!(v["rows"][0]["iterations"], 3);
        assert_eq!(v["rows"][0]["tokens"]["input"], 1000);
        assert_eq!(v["rows"][0]["tokens"]["cache_write"], 0);
        assert_eq!(v["unknown_cost_iterations"], 0);
        assert!(v["rows"][0].get("project").is_none());
    }

    #[test]
    fn since_accepts_dates_and_rfc3339() {
        assert_eq!(
            parse_since("2025-01-31T09:00:00+01:00").unwrap(),
            "2025-01-31T08:00:00.000Z"
        );
        let day = parse_since("2025-01-31").unwrap();
        assert!(day.ends_with('Z'), "{day}");
        let err = parse_since("last tuesday").unwrap_err();
        assert_eq!(err.code, exit_codes::USAGE);
        assert!(err.hint.unwrap().contains("2025-01-31"));
    }
}

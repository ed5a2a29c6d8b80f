//! Single-value rules of stories.toml that ralph.toml has no equivalent of: the version, ids,
//! the plan name as a git branch name, paths that must exist, and `[[story.criteria]]`.

#![expect(
    clippy::result_large_err,
    reason = "ConfigError's public shape is the CLI contract; an error ends the parse"
)]

use std::ops::Range;
use std::path::PathBuf;

use ralph_stories::{Check, Criterion};
use toml_edit::{TableLike, Value};

use super::keys::{self, names};
use super::walk::{tables, text, unknown};
use crate::config::text::{found, quote};
use crate::config::validate::{entries, Entry, Result, Walker};

pub(super) fn version(w: &Walker, e: &Entry) -> Result<i64> {
    match e.item.as_value() {
        Some(Value::Integer(i)) if *i.value() == 1 => Ok(1),
        Some(Value::Integer(i)) => Err(w.bad(
            e,
            format!(
                "unsupported plan version {}: this ralph reads version 1",
                i.value()
            ),
            "write version = 1 (or upgrade ralph, if the plan was written by a newer one)",
        )),
        _ => Err(w.bad(
            e,
            format!("expected the whole number 1, found {}", found(e.item)),
            "write version = 1 (no quotes)",
        )),
    }
}

pub(super) fn id(w: &Walker, e: &Entry, example: &str) -> Result<String> {
    let s = w.string(e, example)?;
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        let fixed: String = s
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let fixed = if fixed.trim_matches('-').is_empty() {
            example.to_string()
        } else {
            fixed
        };
        return Err(w.bad(
            e,
            format!(
                "an id is letters, digits, `_` and `-` only, found {}",
                found(e.item)
            ),
            format!("write {} = {}", e.name, quote(&fixed)),
        ));
    }
    Ok(s.to_string())
}

/// The plan name becomes the branch `ralph/<name>`: it must pass `git check-ref-format
/// --branch` there. `None` if fine, else why not.
pub(crate) fn branch_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.starts_with('-') {
        return Some("it starts with `-`");
    }
    if name
        .chars()
        .any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c))
    {
        return Some("it contains a space, a control character or one of ~ ^ : ? * [ \\");
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return Some("it contains `..`, `@{` or `//`");
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return Some("it starts or ends with `/`, or ends with `.`");
    }
    if name
        .split('/')
        .any(|c| c.starts_with('.') || c.ends_with(".lock"))
    {
        return Some("a part of it starts with `.` or ends with `.lock`");
    }
    None
}

pub(super) fn plan_name(w: &Walker, e: &Entry) -> Result<String> {
    let s = text(w, e, "my-feature")?;
    if let Some(why) = branch_name_problem(&s) {
        let fixed: String = s
            .trim()
            .trim_start_matches(['-', '.'])
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let fixed = if fixed.is_empty() {
            "my-feature".to_string()
        } else {
            fixed
        };
        return Err(w.bad(
            e,
            format!("the plan name cannot be a git branch name (ralph/<name>): {why}"),
            format!("write name = {}", quote(&fixed)),
        ));
    }
    Ok(s)
}

/// `prd` and `design`: relative to the project root (the current directory), and existing.
pub(super) fn existing_path(w: &Walker, e: &Entry) -> Result<PathBuf> {
    let s = text(w, e, "docs/prd.md")?;
    let path = PathBuf::from(&s);
    if !path.is_file() {
        return Err(w.bad(
            e,
            format!(
                "{} is not a file (paths are relative to the project root)",
                quote(&s)
            ),
            "write the file's path from the directory you run ralph in, or remove the key",
        ));
    }
    Ok(path)
}

pub(super) fn criteria(w: &mut Walker, e: &Entry) -> Result<Vec<Criterion>> {
    let mut out: Vec<(Criterion, Option<Range<usize>>)> = Vec::new();
    for (i, (table, span)) in tables(w, e, "criterion")?.into_iter().enumerate() {
        let section = format!("{}[{i}]", e.path());
        let (c, id_span) = criterion(w, &section, table, span)?;
        if out.iter().any(|(o, _)| o.id == c.id) {
            return Err(w.error(
                id_span,
                Some(format!("{section}.id")),
                format!("criterion id {} is used twice in this story", quote(&c.id)),
                "give each criterion of a story its own id (AC-1, AC-2, …)",
            ));
        }
        out.push((c, id_span));
    }
    Ok(out.into_iter().map(|(c, _)| c).collect())
}

fn criterion(
    w: &mut Walker,
    section: &str,
    table: &dyn TableLike,
    span: Option<Range<usize>>,
) -> Result<(Criterion, Option<Range<usize>>)> {
    let (mut id, mut id_span, mut txt, mut run) = (None, None, None, None);
    let (mut check, mut check_entry) = ("auto", None);
    let all = entries(section, table);
    for e in &all {
        w.record(e);
        match e.name {
            "id" => {
                id = Some(self::id(w, e, "AC-1")?);
                id_span = e.span();
            }
            "text" => txt = Some(text(w, e, "the migration applies")?),
            "check" => {
                check = w.choice(e, keys::CHECKS, "auto")?;
                check_entry = Some(e);
            }
            "run" => run = Some((text(w, e, "cargo test")?, e)),
            _ => {
                return Err(unknown(
                    w,
                    e,
                    "in [[story.criteria]]",
                    &names(keys::CRITERION),
                ))
            }
        }
    }
    let need = |key: &str, hint: &str| {
        w.error(
            span.clone(),
            Some(format!("{section}.{key}")),
            format!("the criterion has no `{key}`"),
            hint,
        )
    };
    let id = id.ok_or_else(|| need("id", "add id = \"AC-1\""))?;
    let text = txt.ok_or_else(|| need("text", "add text = \"…\": what must be true"))?;
    let check = match (check, run) {
        ("manual", Some((_, e))) => {
            return Err(w.bad(
                e,
                "a manual criterion is never run, so `run` would be ignored",
                "remove `run`, or set check = \"auto\" so that it must pass",
            ))
        }
        ("manual", None) => Check::Manual,
        (_, Some((run, _))) => Check::Auto { run },
        (_, None) => {
            let at = check_entry.and_then(Entry::span).or(span);
            return Err(w.error(
                at,
                Some(format!("{section}.run")),
                "an auto criterion needs `run`, the command that must pass",
                "add run = \"cargo test …\", or set check = \"manual\"",
            ));
        }
    };
    Ok((Criterion { id, text, check }, id_span))
}

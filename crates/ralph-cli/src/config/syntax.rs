//! TOML syntax errors, rewritten for people who do not know TOML's grammar.
//!
//! `toml_edit` gives a byte span and a message such as "invalid string / expected `\"`,
//! `'`". The document did not parse, so there are no keys to walk; the section and key are
//! recovered by reading the lines up to the error (headers and `key =` prefixes), which is
//! reliable for the one-line-per-key files ralph.toml consists of.

use std::collections::HashMap;
use std::path::Path;

use super::text::{line_col, toml_string};
use super::ConfigError;

pub(crate) fn error(src: &str, file: &Path, err: &toml_edit::TomlError) -> ConfigError {
    let Some(span) = err.span() else {
        return ConfigError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            key: None,
            message: format!("invalid TOML: {}", one_line(err.message())),
            hint: Some(GENERIC_HINT.into()),
        };
    };
    let (line, column) = line_col(src, span.start);
    let ctx = Context::scan(src, line);
    let (message, hint) = explain(err.message(), &ctx);
    ConfigError {
        file: file.to_path_buf(),
        line: Some(line),
        column: Some(column),
        key: ctx.key_path(),
        message: format!("invalid TOML: {message}"),
        hint: Some(hint),
    }
}

const GENERIC_HINT: &str =
    "each line is `key = value`, a [section] header or a # comment; see https://toml.io";

/// toml_edit messages are a headline plus "expected …" lines.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the lines up to the error say about where it is.
#[derive(Debug, Default)]
struct Context {
    /// Current section as a key path prefix: `loop`, `gates[1]`; `None` at the top level.
    section: Option<String>,
    /// The error line is a section header: its name.
    header: Option<String>,
    /// The key on the error line (text before `=`, or the first word when `=` is missing).
    key: Option<String>,
    /// The line has an `=`.
    has_equals: bool,
    /// The raw text after `=`, without a trailing comment, trimmed.
    value: Option<String>,
    /// An earlier line that sets the same key in the same section.
    earlier_line: Option<usize>,
    /// The text after the key when there is no `=` (`max_iterations 10` → `10`).
    after_key: Option<String>,
}

impl Context {
    fn scan(src: &str, line: usize) -> Context {
        let mut ctx = Context::default();
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut seen: Vec<(Option<String>, String, usize)> = Vec::new();
        let lines: Vec<&str> = src.lines().collect();
        for (i, l) in lines.iter().enumerate().take(line.saturating_sub(1)) {
            if let Some((name, is_array)) = header(l) {
                ctx.section = Some(if is_array {
                    let n = counts.entry(name.clone()).or_insert(0);
                    *n += 1;
                    format!("{name}[{}]", *n - 1)
                } else {
                    name
                });
            } else if let Some((key, _)) = assignment(l) {
                seen.push((ctx.section.clone(), key, i + 1));
            }
        }
        let Some(l) = lines.get(line.saturating_sub(1)) else {
            return ctx;
        };
        if let Some((name, _)) = header(l) {
            ctx.header = Some(name);
        } else if let Some(rest) = l.trim_start().strip_prefix('[') {
            // An unterminated header: its name is still the best key to report.
            let name: String = rest
                .trim_start_matches('[')
                .chars()
                .take_while(|c| is_bare_key_char(*c))
                .collect();
            ctx.header = Some(name).filter(|n| !n.is_empty());
        } else if let Some((key, value)) = assignment(l) {
            ctx.earlier_line = seen
                .iter()
                .find(|(s, k, _)| *s == ctx.section && *k == key)
                .map(|(_, _, n)| *n);
            ctx.key = Some(key);
            ctx.has_equals = true;
            ctx.value = Some(value);
        } else {
            let t = l.trim_start();
            let word = t.split_whitespace().next().unwrap_or_default();
            if !word.is_empty() && word.chars().all(is_bare_key_char) {
                ctx.key = Some(word.to_string());
                let rest = t.get(word.len()..).unwrap_or_default().trim();
                ctx.after_key = Some(rest.to_string()).filter(|r| !r.is_empty());
            }
        }
        ctx
    }

    fn key_path(&self) -> Option<String> {
        if let Some(h) = &self.header {
            return Some(h.clone());
        }
        let key = self.key.as_ref()?;
        Some(match &self.section {
            Some(s) => format!("{s}.{key}"),
            None => key.clone(),
        })
    }

    /// The key's last segment, for hints that show a corrected line.
    fn leaf(&self) -> &str {
        let key = self.key.as_deref().unwrap_or("key");
        key.rsplit('.').next().unwrap_or(key)
    }
}

fn is_bare_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Normalise a dotted key as written (`a . "b"`) to `a.b`; `None` if it does not look like a key.
fn key_path_text(raw: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in raw.split('.') {
        let p = part.trim();
        let p = p
            .strip_prefix('"')
            .and_then(|p| p.strip_suffix('"'))
            .or_else(|| p.strip_prefix('\'').and_then(|p| p.strip_suffix('\'')))
            .unwrap_or(p);
        if p.is_empty() || !p.chars().all(|c| is_bare_key_char(c) || c == ' ') {
            return None;
        }
        parts.push(p.to_string());
    }
    Some(parts.join("."))
}

/// `[name]` → (name, false); `[[name]]` → (name, true).
fn header(line: &str) -> Option<(String, bool)> {
    let t = line.trim();
    if let Some(rest) = t.strip_prefix("[[") {
        let end = rest.find("]]")?;
        return Some((key_path_text(rest.get(..end)?)?, true));
    }
    let rest = t.strip_prefix('[')?;
    let end = rest.find(']')?;
    Some((key_path_text(rest.get(..end)?)?, false))
}

/// `key = value # comment` → (key, value).
fn assignment(line: &str) -> Option<(String, String)> {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with('[') {
        return None;
    }
    let eq = t.find('=')?;
    let key = key_path_text(t.get(..eq)?)?;
    let mut value = t.get(eq + 1..)?.trim();
    // A comment can only be cut reliably from unquoted text.
    if !value.starts_with(['"', '\'']) {
        if let Some(hash) = value.find('#') {
            value = value.get(..hash).unwrap_or(value).trim();
        }
    }
    Some((key, value.to_string()))
}

/// Text between the first pair of backticks, without TOML quotes.
fn backticked(s: &str) -> Option<String> {
    let start = s.find('`')? + 1;
    let end = start + s.get(start..)?.find('`')?;
    let k = s.get(start..end)?;
    Some(k.trim_matches('"').trim_matches('\'').to_string())
}

fn explain(raw: &str, ctx: &Context) -> (String, String) {
    let mut lines = raw.lines().map(str::trim).filter(|l| !l.is_empty());
    let head = lines.next().unwrap_or_default();
    let detail: Vec<&str> = lines.collect();
    let detail = detail.join("; ");
    let leaf = ctx.leaf();
    let in_section = match &ctx.section {
        Some(s) => format!(" in [{s}]"),
        None => " at the top level".to_string(),
    };
    let unquoted = |v: &str| {
        (
            format!("text must be in quotes, found `{v}`"),
            format!("write {leaf} = {}", toml_string(v)),
        )
    };
    match head {
        h if h.starts_with("duplicate key") => {
            let key = backticked(h).unwrap_or_else(|| leaf.to_string());
            let other = match ctx.earlier_line {
                Some(n) => format!(" (the other one is on line {n})"),
                None => String::new(),
            };
            (
                format!("`{key}` is set twice{in_section}"),
                format!("keep only one `{key} = …` line{other}"),
            )
        }
        "invalid table header" if detail.contains("duplicate key") => {
            let name = ctx
                .header
                .clone()
                .or_else(|| backticked(&detail))
                .unwrap_or_default();
            let hint = if name == "gates" {
                "write [[gates]] (double brackets) above every gate".to_string()
            } else {
                format!("merge the two [{name}] sections into one")
            };
            (format!("section [{name}] appears twice"), hint)
        }
        "invalid table header" if detail.contains("`]`") => (
            "unterminated section header".into(),
            "close it with `]`, as in [loop] (or `]]`, as in [[gates]])".into(),
        ),
        "invalid table header" => (
            format!("invalid section header ({detail})"),
            "section headers look like [loop] or [[gates]]".into(),
        ),
        "invalid string" if !ctx.has_equals => missing_equals(ctx),
        "invalid string" => match ctx.value.as_deref() {
            None | Some("") => (
                "missing value after `=`".into(),
                "write a value after `=`: text in quotes, a number, true or false, or a [list]"
                    .into(),
            ),
            Some(v) => unquoted(v),
        },
        "expected newline, `#`" | "expected newline, `#`, `,`" => match ctx.value.as_deref() {
            // `max_runtime = 4h` parses `4` and then stumbles on `h`: it wanted a string.
            Some(v) if !v.is_empty() && !v.contains(char::is_whitespace) && ctx.has_equals => {
                unquoted(v)
            }
            _ => (
                "unexpected text after the value".into(),
                "put each `key = value` on its own line; quote text: key = \"some text\"".into(),
            ),
        },
        "invalid basic string" | "invalid literal string" => (
            "unterminated string (or a control character in it)".into(),
            "close the string with a matching quote on the same line; for text over several \
             lines use triple quotes: \"\"\"…\"\"\""
                .into(),
        ),
        "invalid multiline basic string" | "invalid multiline literal string" => (
            "unterminated multi-line string".into(),
            "close it with the same triple quotes it starts with (\"\"\" or ''')".into(),
        ),
        "invalid array" => (
            "unterminated array or missing comma".into(),
            "separate items with commas and close the array with `]`, as in args = [\"a\", \"b\"]"
                .into(),
        ),
        "invalid inline table" => (
            "invalid inline table".into(),
            "write an inline table on one line, as in { key = \"value\", other = 1 }".into(),
        ),
        h if h.starts_with("expected `.`, `=`") => missing_equals(ctx),
        "invalid key" => ("invalid key".into(), GENERIC_HINT.into()),
        "invalid escape sequence" => {
            let inner = ctx
                .value
                .as_deref()
                .and_then(|v| v.strip_prefix('"')?.strip_suffix('"'));
            let hint = match inner {
                // A Windows path, most likely: single quotes keep backslashes as written.
                Some(inner) if !inner.contains('\'') => {
                    format!("write {leaf} = '{inner}' (single quotes keep backslashes as written)")
                }
                _ => {
                    "in \"…\" strings write \\\\ for a backslash, or use single quotes: 'C:\\path'"
                        .into()
                }
            };
            ("invalid escape sequence in a string".into(), hint)
        }
        h if h.starts_with("dotted key") => (
            h.to_string(),
            "a key cannot hold both a value and a table; rename one of them".into(),
        ),
        h => {
            let message = if detail.is_empty() {
                h.to_string()
            } else {
                format!("{h} ({detail})")
            };
            (message, GENERIC_HINT.into())
        }
    }
}

fn missing_equals(ctx: &Context) -> (String, String) {
    let leaf = ctx.leaf();
    let value = ctx.after_key.as_deref().unwrap_or("value");
    (
        "expected `=` after the key".into(),
        format!("write {leaf} = {value}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_helpers() {
        assert_eq!(header("[loop]"), Some(("loop".into(), false)));
        assert_eq!(header("  [[ gates ]] # x"), Some(("gates".into(), true)));
        assert_eq!(header("[\"a\", \"b\"],"), None);
        assert_eq!(
            assignment("max_runtime = 4h # x"),
            Some(("max_runtime".into(), "4h".into()))
        );
        assert_eq!(
            assignment("a.\"b\" = \"#\""),
            Some(("a.b".into(), "\"#\"".into()))
        );
        assert_eq!(assignment("# a = 1"), None);
        assert_eq!(
            backticked("duplicate key `\"loop\"` in document root"),
            Some("loop".into())
        );
    }
}

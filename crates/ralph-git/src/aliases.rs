//! The git aliases the repository's configuration defines (every scope git reads: system,
//! global, the repository's own), for the command guard: an agent's `git nuke` is checked as
//! the `reset --hard` it expands to.

use crate::command::Invocation;
use crate::{Git, GitError};

impl Git {
    /// `(name, value)` of every `alias.*` setting, in the order git reads them (a later one
    /// wins). None defined is an empty list.
    pub fn aliases(&self) -> Result<Vec<(String, String)>, GitError> {
        let args = &["config", "-z", "--get-regexp", r"^alias\."];
        let out = self.run_raw(&Invocation::new(args))?;
        // `--get-regexp` exits 1 when nothing matches.
        if out.code == Some(1) && out.stdout.is_empty() {
            return Ok(Vec::new());
        }
        if !out.success() {
            return Err(crate::command::failed(args, &out));
        }
        Ok(parse_aliases(&out.stdout))
    }
}

/// `-z` output: `key\nvalue\0` per entry (`key\0` for a key without value).
fn parse_aliases(stdout: &[u8]) -> Vec<(String, String)> {
    stdout
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let text = String::from_utf8_lossy(e);
            let (key, value) = text.split_once('\n').unwrap_or((&text, ""));
            let name = key.strip_prefix("alias.")?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_null_separated_entries() {
        let out = b"alias.nuke\nreset --hard\0alias.multi\nline one\nline two\0alias.bare\0";
        assert_eq!(
            parse_aliases(out),
            vec![
                ("nuke".to_string(), "reset --hard".to_string()),
                ("multi".to_string(), "line one\nline two".to_string()),
                ("bare".to_string(), String::new()),
            ]
        );
    }
}

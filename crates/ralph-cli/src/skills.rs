//! Skills: the prompts of the planner's agent calls, shipped as editable Markdown files. The
//! built-in ones are data in the binary (`skills/*.md`); a project's `.ralph/skills/<name>.md`
//! replaces the built-in of that name. A skill starts with a front matter block:
//!
//! ```text
//! ---
//! name: design-solution
//! description: one line
//! inputs: prd, design_path, architecture?, feedback?     (`?`: may be empty)
//! output: design_path                                      (the input naming the file written)
//! sections: Components, Data, Interfaces, Risks            (`##` headings the output must have)
//! ---
//! the prompt, with {{input}} placeholders
//! ```
//!
//! Every placeholder must be a declared input, so a typo in an edited skill is an error when it
//! is loaded, not a literal `{{prd_pth}}` in an agent's prompt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ralph_types::exit_codes;

use crate::error::CliError;

/// The built-in skills, by name, in the order `ralph skills list` shows them.
pub const BUILTIN: &[(&str, &str)] = &[
    ("create-prd", include_str!("../skills/create-prd.md")),
    (
        "design-solution",
        include_str!("../skills/design-solution.md"),
    ),
    (
        "solution-to-stories",
        include_str!("../skills/solution-to-stories.md"),
    ),
    (
        "research-codebase-patterns",
        include_str!("../skills/research-codebase-patterns.md"),
    ),
    (
        "research-database",
        include_str!("../skills/research-database.md"),
    ),
    (
        "research-ui-ux",
        include_str!("../skills/research-ui-ux.md"),
    ),
];

/// Where a project's skills live, relative to the project root.
pub const PROJECT_DIR: &str = ".ralph/skills";

#[derive(Debug, Clone, PartialEq)]
pub struct Skill {
    pub name: String,
    pub description: String,
    /// `(name, required)`, in the order declared.
    pub inputs: Vec<(String, bool)>,
    /// The input whose value is the path of the file the skill writes.
    pub output: Option<String>,
    /// `##` headings that file must have.
    pub sections: Vec<String>,
    pub body: String,
    /// `None`: built in.
    pub path: Option<PathBuf>,
    /// The file as it is (front matter and body), for `show` and `export`.
    pub text: String,
}

/// The skill called `name`: the project's if it has one, else the built-in; `None` when
/// neither exists. A malformed project skill is an error (exit 2), never silently replaced by
/// the built-in.
pub fn find(root: &Path, name: &str) -> Result<Option<Skill>, CliError> {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        let rel = Path::new(PROJECT_DIR).join(format!("{name}.md"));
        let path = root.join(&rel);
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                CliError::new(
                    exit_codes::USAGE,
                    format!("cannot read {}: {e}", rel.display()),
                    None,
                )
            })?;
            return parse(&text, Some(&rel), name).map(Some);
        }
    }
    match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((n, text)) => parse(text, None, n).map(Some),
        None => Ok(None),
    }
}

/// Like [`find`], with an error naming the skills when there is none.
pub fn get(root: &Path, name: &str) -> Result<Skill, CliError> {
    find(root, name)?.ok_or_else(|| {
        CliError::usage(
            format!("there is no skill {name:?}"),
            Some(format!(
                "skills: {} (`ralph skills list`; a project's own go in {PROJECT_DIR}/<name>.md)",
                names(root).join(", ")
            )),
        )
    })
}

/// Every skill's name: the built-ins, then the project's that add new names.
pub fn names(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    if let Ok(dir) = std::fs::read_dir(root.join(PROJECT_DIR)) {
        let mut more: Vec<String> = dir
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".md").map(str::to_string)
            })
            .filter(|n| !out.contains(n))
            .collect();
        more.sort();
        out.extend(more);
    }
    out
}

fn parse(text: &str, path: Option<&Path>, expected: &str) -> Result<Skill, CliError> {
    let file = path.map_or_else(
        || format!("<built-in>/{expected}.md"),
        |p| p.display().to_string(),
    );
    let err = |line: usize, msg: String, hint: &str| {
        CliError::preformatted(
            exit_codes::USAGE,
            format!("error: {file}:{line}: {msg}\n  hint: {hint}"),
        )
    };
    let mut lines = text.lines().enumerate();
    if lines.next().map(|(_, l)| l.trim_end()) != Some("---") {
        return Err(err(
            1,
            "a skill starts with a front matter block (`---`)".into(),
            "start the file with ---, then name:, description:, inputs:, and --- again",
        ));
    }
    let mut fields: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut body_at = None;
    for (i, l) in lines.by_ref() {
        if l.trim_end() == "---" {
            body_at = Some(i + 1);
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err(err(
                i + 1,
                format!("expected `key: value` in the front matter, found {l:?}"),
                "keys: name, description, inputs, output, sections",
            ));
        };
        let k = k.trim();
        if !["name", "description", "inputs", "output", "sections"].contains(&k) {
            return Err(err(
                i + 1,
                format!("unknown front matter key `{k}`"),
                "keys: name, description, inputs, output, sections",
            ));
        }
        fields.insert(k.to_string(), (i + 1, v.trim().to_string()));
    }
    let Some(body_at) = body_at else {
        return Err(err(
            1,
            "the front matter is not closed".into(),
            "end it with a line `---`",
        ));
    };
    let list = |k: &str| -> Vec<String> {
        fields.get(k).map_or_else(Vec::new, |(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
    };
    let name = fields
        .get("name")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if name != expected {
        let line = fields.get("name").map_or(1, |(l, _)| *l);
        return Err(err(
            line,
            format!("the skill is named {name:?} but its file is {expected}.md"),
            &format!("write name: {expected}"),
        ));
    }
    let inputs: Vec<(String, bool)> = list("inputs")
        .into_iter()
        .map(|i| match i.strip_suffix('?') {
            Some(n) => (n.to_string(), false),
            None => (i, true),
        })
        .collect();
    let output = fields.get("output").map(|(_, v)| v.clone());
    if let Some(o) = &output {
        if !inputs.iter().any(|(n, _)| n == o) {
            let line = fields.get("output").map_or(1, |(l, _)| *l);
            return Err(err(
                line,
                format!("output {o:?} is not one of the skill's inputs"),
                "output names the input that holds the written file's path",
            ));
        }
    }
    let body: String = text
        .lines()
        .skip(body_at)
        .map(|l| format!("{l}\n"))
        .collect();
    for (n, line) in body.lines().enumerate() {
        for p in placeholders(line) {
            if !inputs.iter().any(|(i, _)| i == p) {
                return Err(err(
                    body_at + n + 1,
                    format!("{{{{{p}}}}} is not one of the skill's inputs"),
                    &format!(
                        "declare it in `inputs:`, or fix its name (inputs: {})",
                        inputs
                            .iter()
                            .map(|(i, _)| i.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    Ok(Skill {
        name,
        description: fields
            .get("description")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        inputs,
        output,
        sections: list("sections"),
        body,
        path: path.map(Path::to_path_buf),
        text: text.to_string(),
    })
}

/// The `{{name}}`s of a line.
fn placeholders(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = &after[..end];
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            out.push(name);
        }
        rest = &after[end + 2..];
    }
    out
}

impl Skill {
    /// The prompt, every placeholder replaced. A required input without a value is an error
    /// naming every missing one; an optional one without a value is empty.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String, CliError> {
        let missing: Vec<&str> = self
            .inputs
            .iter()
            .filter(|(n, req)| *req && values.get(n).is_none_or(|v| v.trim().is_empty()))
            .map(|(n, _)| n.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(CliError::usage(
                format!(
                    "skill {} needs {}",
                    self.name,
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(format!(
                    "pass each with --set NAME=VALUE (inputs: {})",
                    self.input_list()
                )),
            ));
        }
        let mut out = self.body.clone();
        for (n, _) in &self.inputs {
            let v = values.get(n).map(String::as_str).unwrap_or("");
            out = out.replace(&format!("{{{{{n}}}}}"), v);
        }
        Ok(out)
    }

    /// `prd, design_path, architecture?` as declared.
    pub fn input_list(&self) -> String {
        self.inputs
            .iter()
            .map(|(n, req)| if *req { n.clone() } else { format!("{n}?") })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether the file the skill wrote is there with every section; the problem otherwise,
    /// in words the agent can act on.
    pub fn check_output(&self, path: &Path) -> Result<(), String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(_) => return Err(format!("{} was not written", path.display())),
        };
        if text.trim().is_empty() {
            return Err(format!("{} is empty", path.display()));
        }
        let headings: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("## "))
            .map(|h| h.trim().to_lowercase())
            .collect();
        let missing: Vec<&str> = self
            .sections
            .iter()
            .filter(|s| !headings.iter().any(|h| h.starts_with(&s.to_lowercase())))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} has no `## {}` section{} (it must have: {})",
                path.display(),
                missing.join("`, `## "),
                if missing.len() == 1 { "" } else { "s" },
                self.sections.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_skill_loads_and_renders_with_its_inputs() {
        for (name, _) in BUILTIN {
            let s = find(Path::new("/nonexistent"), name).unwrap().unwrap();
            let values: BTreeMap<String, String> = s
                .inputs
                .iter()
                .map(|(n, _)| (n.clone(), format!("<{n}>")))
                .collect();
            let text = s.render(&values).unwrap();
            assert!(!text.contains("{{"), "{name}: {text}");
            for (n, _) in &s.inputs {
                assert!(text.contains(&format!("<{n}>")), "{name} never uses {n}");
            }
        }
    }

    #[test]
    fn a_placeholder_that_is_not_an_input_is_located() {
        let e = parse(
            "---\nname: x\ninputs: a\n---\nuse {{a}}\nand {{b}}\n",
            None,
            "x",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("<built-in>/x.md:6"), "{msg}");
        assert!(msg.contains("{{b}}"), "{msg}");
    }

    #[test]
    fn a_missing_required_input_is_named_and_an_optional_one_is_empty() {
        let s = parse(
            "---\nname: x\ninputs: a, b?\n---\n[{{a}}][{{b}}]\n",
            None,
            "x",
        )
        .unwrap();
        assert!(s
            .render(&BTreeMap::new())
            .unwrap_err()
            .to_string()
            .contains("`a`"));
        let v = BTreeMap::from([("a".to_string(), "1".to_string())]);
        assert_eq!(s.render(&v).unwrap(), "[1][]\n");
    }

    #[test]
    fn an_output_without_a_section_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.md");
        std::fs::write(&p, "# D\n## Components\nx\n## data model\n").unwrap();
        let s = find(Path::new("/nonexistent"), "design-solution")
            .unwrap()
            .unwrap();
        let e = s.check_output(&p).unwrap_err();
        assert!(e.contains("`## Interfaces`, `## Risks` sections"), "{e}");
    }
}

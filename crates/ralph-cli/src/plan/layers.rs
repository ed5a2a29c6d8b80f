//! Each story's `layer` against the plan's `architecture`: one of the template's layers (or
//! `other`) when the plan names one, one of [`Layer::DEFAULTS`] when it does not; an
//! `architecture` that names no template is an error at its value.

#![expect(
    clippy::result_large_err,
    reason = "ConfigError's public shape is the CLI contract; an error ends the parse"
)]

use std::ops::Range;
use std::path::Path;

use ralph_stories::{Layer, Plan};

use super::template;
use super::walk::StorySpans;
use crate::config::text::{quote, suggest};
use crate::config::validate::{Result, Walker};

pub(super) fn check(
    w: &Walker,
    plan: &Plan,
    spans: &[StorySpans],
    arch_span: Option<Range<usize>>,
) -> Result<()> {
    // Relative to the directory ralph runs in, like `prd` and `design`.
    let root = Path::new(".");
    let (allowed, whose): (Vec<String>, String) = match &plan.architecture {
        Some(name) => match template::find(root, name)? {
            Some((t, _)) => {
                let mut l: Vec<String> = t.layer_names().iter().map(|s| s.to_string()).collect();
                l.push("other".into());
                (l, format!("architecture {}", quote(name)))
            }
            None => {
                let names = template::names(root);
                let hint = match suggest(name, &names.iter().map(String::as_str).collect::<Vec<_>>()) {
                    Some(s) => format!("did you mean {}? templates: {}", quote(s), names.join(", ")),
                    None => format!(
                        "templates: {} (`ralph templates list`; a project's own go in {}/<name>.toml)",
                        names.join(", "),
                        template::PROJECT_DIR
                    ),
                };
                return Err(w.error(
                    arch_span,
                    Some("architecture".into()),
                    format!("there is no architecture template {}", quote(name)),
                    hint,
                ));
            }
        },
        None => (
            Layer::DEFAULTS.iter().map(|s| s.to_string()).collect(),
            "a plan without `architecture`".into(),
        ),
    };
    for (i, s) in plan.stories.iter().enumerate() {
        if allowed.iter().any(|a| a == s.layer.as_str()) {
            continue;
        }
        let list: Vec<&str> = allowed.iter().map(String::as_str).collect();
        let hint = match suggest(s.layer.as_str(), &list) {
            Some(x) => format!(
                "did you mean {}? layers of {whose}: {}",
                quote(x),
                list.join(", ")
            ),
            None => format!("layers of {whose}: {}", list.join(", ")),
        };
        return Err(w.error(
            spans.get(i).and_then(|sp| sp.layer.clone()),
            Some(format!("story[{i}].layer")),
            format!(
                "story {} has layer {}, which {whose} does not have",
                quote(&s.id),
                quote(s.layer.as_str())
            ),
            hint,
        ));
    }
    Ok(())
}

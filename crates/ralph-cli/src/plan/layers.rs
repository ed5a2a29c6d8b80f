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
    let (allowed, template_name) = match &plan.architecture {
        Some(name) => match template::find(root, name)? {
            Some((t, _)) => {
                let mut l: Vec<String> = t.layer_names().iter().map(|s| s.to_string()).collect();
                l.push("other".into());
                (l, Some(name.as_str()))
            }
            None => return Err(unknown_template(w, name, arch_span)),
        },
        None => (
            Layer::DEFAULTS.iter().map(|s| s.to_string()).collect(),
            None,
        ),
    };
    for (i, s) in plan.stories.iter().enumerate() {
        if allowed.iter().any(|a| a == s.layer.as_str()) {
            continue;
        }
        let list: Vec<&str> = allowed.iter().map(String::as_str).collect();
        let near = suggest(s.layer.as_str(), &list)
            .map(|x| format!("did you mean {}? ", quote(x)))
            .unwrap_or_default();
        let (message, hint) = match template_name {
            Some(t) => (
                format!(
                    "story {} has layer {}, which architecture {} does not have",
                    quote(&s.id),
                    quote(s.layer.as_str()),
                    quote(t)
                ),
                format!(
                    "{near}layers of architecture {}: {}",
                    quote(t),
                    list.join(", ")
                ),
            ),
            None => (
                format!(
                    "story {} has layer {}, which is not a layer of a plan without `architecture`",
                    quote(&s.id),
                    quote(s.layer.as_str())
                ),
                format!(
                    "{near}layers: {}; or set architecture = \"…\" to use a template's \
                     (ralph templates list)",
                    list.join(", ")
                ),
            ),
        };
        return Err(w.error(
            spans.get(i).and_then(|sp| sp.layer.clone()),
            Some(format!("story[{i}].layer")),
            message,
            hint,
        ));
    }
    Ok(())
}

fn unknown_template(
    w: &Walker,
    name: &str,
    at: Option<Range<usize>>,
) -> crate::config::ConfigError {
    let (message, hint) = template::unknown_template(Path::new("."), name);
    w.error(at, Some("architecture".into()), message, hint)
}

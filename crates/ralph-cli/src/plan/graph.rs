//! The plan's dependency graph, checked by [`ralph_stories::Dag`] (duplicate ids, unknown and
//! self dependencies, cycles), each of its errors located at the `id` or `depends_on` item.

#![expect(
    clippy::result_large_err,
    reason = "ConfigError's public shape is the CLI contract; an error ends the parse"
)]

use ralph_stories::{Dag, DagError, Plan};

use super::walk::StorySpans;
use crate::config::text::quote;
use crate::config::validate::{Result, Walker};

pub(super) fn check(w: &Walker, plan: &Plan, spans: &[StorySpans]) -> Result<Dag> {
    let err = match Dag::of(plan) {
        Ok(dag) => return Ok(dag),
        Err(e) => e,
    };
    let index = |id: &str| plan.stories.iter().position(|s| s.id == id).unwrap_or(0);
    // The item of story `i`'s depends_on that names `dep`.
    let dep_at = |i: usize, dep: &str| {
        let n = plan.stories[i]
            .depends_on
            .iter()
            .position(|d| d == dep)
            .unwrap_or(0);
        let span = spans.get(i).and_then(|s| s.deps.get(n).cloned().flatten());
        (span, Some(format!("story[{i}].depends_on[{n}]")))
    };
    let (span, key, hint) = match &err {
        DagError::DuplicateId { id } => {
            let second = plan
                .stories
                .iter()
                .enumerate()
                .filter(|(_, s)| s.id == *id)
                .nth(1)
                .map_or(0, |(i, _)| i);
            (
                spans.get(second).and_then(|s| s.id.clone()),
                Some(format!("story[{second}].id")),
                format!(
                    "give each story its own id; {} is story[{}]'s",
                    quote(id),
                    index(id)
                ),
            )
        }
        DagError::UnknownDependency { story, dependency } => {
            let (span, key) = dep_at(index(story), dependency);
            let ids: Vec<&str> = plan.stories.iter().map(|s| s.id.as_str()).collect();
            let hint = match crate::config::text::suggest(dependency, &ids) {
                Some(s) => format!("did you mean {}? stories: {}", quote(s), ids.join(", ")),
                None => format!("stories: {}", ids.join(", ")),
            };
            (span, key, hint)
        }
        DagError::SelfDependency { story } => {
            let (span, key) = dep_at(index(story), story);
            (
                span,
                key,
                "remove the story's own id from its depends_on".to_string(),
            )
        }
        DagError::Cycle { path } => {
            let first = path.first().map(String::as_str).unwrap_or_default();
            let next = path.get(1).map(String::as_str).unwrap_or_default();
            let (span, key) = dep_at(index(first), next);
            (
                span,
                key,
                "a story can only depend on work that does not depend on it; remove one of \
                 these dependencies"
                    .to_string(),
            )
        }
    };
    Err(w.error(span, key, err.to_string(), hint))
}

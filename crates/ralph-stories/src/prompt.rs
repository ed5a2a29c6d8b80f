//! The story prompt: what the agent of one story is told, every iteration. Short on purpose
//! (its bytes are paid for every iteration of every story): the story's own text and criteria,
//! where the PRD and design are (paths, not their text: the agent reads what it needs), and what
//! the stories it depends on changed as a `git diff --stat`, not their diffs.

use crate::plan::{Check, Plan, Story};

/// The prompt of `story`'s loop. `deps_changed`: the diff stat from the plan's base to the
/// worktree's start, `None` when the story depends on nothing.
pub fn story_prompt(plan: &Plan, story: &Story, deps_changed: Option<&str>) -> String {
    let mut p = format!(
        "You are implementing story {} of the plan \"{}\": {}\n\n{}\n",
        story.id,
        plan.name,
        story.title,
        story.description.trim_end()
    );
    if !story.criteria.is_empty() {
        p.push_str("\nAcceptance criteria (all must hold):\n");
        for c in &story.criteria {
            match &c.check {
                Check::Auto { run } => {
                    p.push_str(&format!("- {}: {} (checked by `{run}`)\n", c.id, c.text));
                }
                Check::Manual => {
                    p.push_str(&format!("- {}: {} (checked by a person)\n", c.id, c.text))
                }
            }
        }
    }
    let docs: Vec<String> = [("PRD", &plan.prd), ("design", &plan.design)]
        .into_iter()
        .filter_map(|(what, p)| p.as_ref().map(|p| format!("{what}: {}", p.display())))
        .collect();
    if !docs.is_empty() {
        p.push_str(&format!("\nContext: {}.\n", docs.join(", ")));
    }
    if let Some(stat) = deps_changed.filter(|s| !s.trim().is_empty()) {
        let deps = story.depends_on.join(", ");
        p.push_str(&format!(
            "\nThe stories this one builds on ({deps}) are merged here; they changed:\n{}\n",
            stat.trim_end()
        ));
    }
    p.push_str(
        "\nWork only in the current directory. Do not switch branches; ralph commits your \
         changes after every iteration.\n",
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Criterion, Layer};

    #[test]
    fn names_the_story_its_criteria_and_what_its_dependencies_changed() {
        let story = Story {
            id: "S-2".into(),
            title: "API".into(),
            layer: Layer::new("api"),
            depends_on: vec!["S-1".into()],
            affected_paths: vec![],
            description: "Serve it.\n".into(),
            complexity: None,
            criteria: vec![
                Criterion {
                    id: "AC-1".into(),
                    text: "it answers".into(),
                    check: Check::Auto {
                        run: "make t".into(),
                    },
                },
                Criterion {
                    id: "AC-2".into(),
                    text: "it reads well".into(),
                    check: Check::Manual,
                },
            ],
        };
        let plan = Plan {
            name: "p".into(),
            prd: Some("docs/prd.md".into()),
            design: None,
            architecture: None,
            stories: vec![story.clone()],
        };
        let p = story_prompt(&plan, &story, Some(" db.rs | 3 +++\n"));
        assert!(
            p.starts_with("You are implementing story S-2 of the plan \"p\": API\n\nServe it.\n")
        );
        assert!(p.contains("- AC-1: it answers (checked by `make t`)\n"));
        assert!(p.contains("- AC-2: it reads well (checked by a person)\n"));
        assert!(p.contains("Context: PRD: docs/prd.md.\n"));
        assert!(p.contains("(S-1) are merged here; they changed:\n db.rs | 3 +++\n"));
        assert!(p.len() < 600, "{} bytes", p.len());
    }
}

//! `ralph plan --claude-agents`: Claude Code subagent files for the plan's layers, in Claude
//! Code's documented format (`.claude/agents/<name>.md`: YAML front matter with `name`,
//! `description` and an optional `model`, then the subagent's system prompt), one per layer of
//! the template (`ralph-<layer>`) and an orchestrator (`ralph-orchestrator`) that delegates each
//! story to its layer's subagent. A file that exists and differs is kept unless `--force`.

use std::path::{Path, PathBuf};

use ralph_stories::Template;

use crate::config::ConfigFile;

pub(crate) const DIR: &str = ".claude/agents";

/// Every file's path and text.
pub(crate) fn files(
    root: &Path,
    cfg: &ConfigFile,
    template: &Template,
    plan_name: &str,
    plan_path: &Path,
) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for name in template.order() {
        let Some(l) = template.layer(name) else {
            continue;
        };
        let conf = cfg.layers.get(name);
        let mut text = format!(
            "---\nname: ralph-{name}\ndescription: Implements stories of the {name} layer ({}) \
             of the plan {plan_name}. Use it for every story whose layer is {name}.\n",
            one_line(&l.description)
        );
        // A model only when the layer runs on Claude (or names no backend).
        if let Some(m) = conf
            .filter(|c| c.backend.as_deref().is_none_or(|b| b == "claude"))
            .and_then(|c| c.model.as_ref())
        {
            text.push_str(&format!("model: {m}\n"));
        }
        text.push_str(&format!(
            "---\nYou implement stories of the `{name}` layer of this repository: {}.\n",
            l.description
        ));
        if !l.depends_on.is_empty() {
            text.push_str(&format!(
                "\nIt builds on the {} layer{}: use what they provide through their \
                 interfaces; do not change them unless the story says so.\n",
                l.depends_on.join(", "),
                if l.depends_on.len() == 1 { "" } else { "s" }
            ));
        }
        if !l.conventions.is_empty() {
            text.push_str(&format!("\nConventions: {}.\n", l.conventions));
        }
        if !l.gates.is_empty() {
            text.push_str("\nEvery story of this layer must prove, with a test that runs:\n");
            for g in &l.gates {
                text.push_str(&format!("- {g}\n"));
            }
        }
        if let Some(extra) = conf
            .and_then(|c| c.instructions.as_ref())
            .and_then(|f| std::fs::read_to_string(root.join(f)).ok())
        {
            text.push_str(&format!("\n{}\n", extra.trim_end()));
        }
        text.push_str(
            "\nWork only in the current directory, do not switch branches; ralph commits your \
             changes and checks the story's acceptance criteria.\n",
        );
        out.push((Path::new(DIR).join(format!("ralph-{name}.md")), text));
    }
    let delegates: Vec<String> = template
        .order()
        .iter()
        .map(|n| format!("- a story of layer `{n}`: the `ralph-{n}` subagent"))
        .collect();
    let orchestrator = format!(
        "---\nname: ralph-orchestrator\ndescription: Coordinates the plan {plan_name} \
         ({plan}): delegates each story to the subagent of its layer and checks that the layers \
         fit together. Use it to work through the plan's stories.\n---\n\
         You coordinate the plan `{plan_name}` in `{plan}` (architecture `{arch}`, layers in \
         build order: {order}). Read the plan, then for each story, in dependency order \
         (`depends_on`), delegate it with the Task tool:\n{delegates}\n\n\
         After each story, run its acceptance criteria's `run` commands; when a story spans \
         layers, check the interface between them (the design document names it) before you \
         go on. Never merge or switch branches yourself: `ralph stories run` runs each story \
         in its own worktree and merges it only once its criteria pass.\n",
        plan = plan_path.display(),
        arch = template.name,
        order = template.order().join(" → "),
        delegates = delegates.join("\n"),
    );
    out.push((Path::new(DIR).join("ralph-orchestrator.md"), orchestrator));
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

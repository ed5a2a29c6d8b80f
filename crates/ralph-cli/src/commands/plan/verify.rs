//! What ralph checks of each phase's output before it accepts it, and the plan's default
//! edges written into the file. Every refusal is a message the agent can act on: it goes into
//! the next attempt's prompt as it is.

use std::path::{Component, Path};

use ralph_stories::Template;

use crate::plan::{parse_plan, PlanFile};

/// What the plan must say of itself.
pub(crate) struct Expect<'a> {
    pub name: &'a str,
    pub template: &'a Template,
}

/// The plan file at `path`, parsed, validated, checked against `expect`, with the template's
/// default edges added to the file (and the edges added); `Err`: what is wrong, for the agent.
pub(crate) fn stories(
    path: &Path,
    expect: &Expect,
) -> Result<(PlanFile, Vec<(String, String)>), String> {
    let src =
        std::fs::read_to_string(path).map_err(|_| format!("{} was not written", path.display()))?;
    let plan = parse_plan(&src, path).map_err(|e| e.to_string())?;
    check(&plan, expect)?;
    let edges = expect.template.default_edges(&plan.plan);
    if edges.is_empty() {
        return Ok((plan, edges));
    }
    let with_edges = add_edges(&src, &edges).ok_or_else(|| {
        format!(
            "{}: write each story as a [[story]] table (ralph adds the template's default \
             dependencies to it)",
            path.display()
        )
    })?;
    // Default edges can close a cycle only with an explicit edge against the layers' order,
    // which the parser names.
    let plan = parse_plan(&with_edges, path).map_err(|e| {
        format!(
            "{e}\n(after ralph added the template's default dependencies: {}; a story of a \
             lower layer must not depend on a higher one)",
            edges
                .iter()
                .map(|(s, d)| format!("{s} → {d}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    std::fs::write(path, &with_edges)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((plan, edges))
}

fn check(plan: &PlanFile, expect: &Expect) -> Result<(), String> {
    let file = plan.path.display();
    let p = &plan.plan;
    if p.name != expect.name {
        return Err(format!(
            "{file}: the plan is named {:?}; write name = {:?}",
            p.name, expect.name
        ));
    }
    if p.architecture.as_deref() != Some(expect.template.name.as_str()) {
        return Err(format!(
            "{file}: write architecture = {:?} at the top (the plan's layers are that \
             template's)",
            expect.template.name
        ));
    }
    for s in &p.stories {
        for a in &s.affected_paths {
            if !inside(a) {
                return Err(format!(
                    "{file}: story {:?}: affected_paths entry {a:?} is outside the repository; \
                     write paths and globs relative to the repository root, without `..`",
                    s.id
                ));
            }
        }
    }
    for (key, v) in [("prd", &p.prd), ("design", &p.design)] {
        if let Some(v) = v.as_ref().filter(|v| !inside(&v.to_string_lossy())) {
            return Err(format!(
                "{file}: {key} = {:?} is outside the repository; write it relative to the \
                 repository root",
                v.display()
            ));
        }
    }
    Ok(())
}

/// A relative path that stays inside the root it is relative to.
fn inside(p: &str) -> bool {
    let path = Path::new(p);
    !p.starts_with('~')
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// `src` with `depends_on` set on the stories named in `edges` (which had none).
fn add_edges(src: &str, edges: &[(String, String)]) -> Option<String> {
    let mut doc: toml_edit::DocumentMut = src.parse().ok()?;
    let stories = doc.get_mut("story")?.as_array_of_tables_mut()?;
    for t in stories.iter_mut() {
        let Some(id) = t.get("id").and_then(|v| v.as_str()).map(str::to_string) else {
            continue;
        };
        let deps: toml_edit::Array = edges
            .iter()
            .filter(|(s, _)| *s == id)
            .map(|(_, d)| d.as_str())
            .collect();
        if !deps.is_empty() {
            t.insert("depends_on", toml_edit::value(deps));
        }
    }
    Some(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_repository_are_outside() {
        for ok in ["src/**", "./a.rs", "*.md", "docs/x y.md"] {
            assert!(inside(ok), "{ok}");
        }
        for bad in ["/etc/**", "../x", "src/../../x", "~/x"] {
            assert!(!inside(bad), "{bad}");
        }
    }

    #[test]
    fn default_edges_are_written_into_the_story_tables() {
        let src = "version = 1\n[[story]]\nid = \"A\"\n\n[[story]]\nid = \"B\"\ntitle = \"b\"\n";
        let out = add_edges(src, &[("B".into(), "A".into())]).unwrap();
        assert!(
            out.contains("id = \"B\"\ntitle = \"b\"\ndepends_on = [\"A\"]"),
            "{out}"
        );
        assert!(!out.contains("id = \"A\"\ndepends_on"), "{out}");
    }
}

//! The parser's results and the layering of overrides; the error messages themselves are
//! snapshot-tested through the binary (`crates/ralph/tests/e2e/stories_plan.rs`).

#![expect(
    clippy::result_large_err,
    reason = "test helpers return the parser's Result as it is"
)]

use std::path::Path;
use std::time::Duration;

use ralph_stories::{Check, Layer};

use super::keys::{self, defaults_keys, LIMIT_KEYS};
use super::*;
use crate::config::validate::AGENT_KEYS;

fn p(src: &str) -> Result<PlanFile, ConfigError> {
    parse_plan(src, Path::new("stories.toml"))
}

/// Sets every key of every table in `keys.rs` (prd and design excepted: they must exist).
const FULL: &str = r#"version = 1
name = "feat/one"
architecture = "layered-4"

[defaults]
backend = "claude"
model = "m1"
args = ["--verbose"]
priority = ["claude"]
fallback = ["codex:gpt-5"]
prompt_via = "stdin"
output = "claude-stream-json"
permissions = "allowlist"
allowed_tools = ["Read"]
max_iterations = 20
max_runtime = "1h"
max_cost_usd = 2
max_tokens = 1000

[[story]]
id = "A_1"
title = "t"
layer = "data"
complexity = "high"
depends_on = []
affected_paths = ["src/**"]
description = "d"
  [[story.criteria]]
  id = "AC-1"
  text = "x"
  check = "auto"
  run = "true"
  [[story.criteria]]
  id = "AC-2"
  text = "y"
  check = "manual"
  [story.agent]
  model = "m2"
  [story.budget]
  max_cost_usd = 5.0
  max_runtime = "30m"

[[story]]
id = "B"
title = "t"
depends_on = ["A_1"]
description = "d"
"#;

#[test]
fn a_full_plan_parses_into_the_model() {
    let f = p(FULL).unwrap();
    assert_eq!(f.plan.name, "feat/one");
    assert_eq!(f.integration_branch(), "ralph/feat/one");
    assert_eq!(f.plan.architecture.as_deref(), Some("layered-4"));
    let a = &f.plan.stories[0];
    assert_eq!(
        (a.id.as_str(), a.layer.clone()),
        ("A_1", Layer::new("data"))
    );
    assert_eq!(a.affected_paths, vec!["src/**".to_string()]);
    assert_eq!(a.criteria[0].check, Check::Auto { run: "true".into() });
    assert_eq!(a.criteria[1].check, Check::Manual);
    let b = &f.plan.stories[1];
    assert_eq!(
        (b.layer.clone(), b.depends_on.clone()),
        (Layer::other(), vec!["A_1".into()])
    );
    assert!(b.criteria.is_empty());
    assert_eq!(f.defaults.max_iterations, Some(20));
    assert_eq!(f.defaults.max_tokens, Some(1000));
    assert_eq!(f.defaults.agent.model.as_deref(), Some("m1"));
    let o = &f.overrides["A_1"];
    assert_eq!(o.agent.model.as_deref(), Some("m2"));
    assert_eq!(o.max_cost_usd, Some(5.0));
    assert_eq!(o.max_runtime, Some(Duration::from_secs(1800)));
    assert!(!f.overrides.contains_key("B"));
    assert_eq!(f.hash.len(), 64);
}

#[test]
fn every_key_in_the_tables_is_in_the_full_plan() {
    // The tables are the schema's source: a key there that the parser rejects, or that this
    // test's plan does not set, is caught here.
    let table_keys = keys::names(keys::TOP)
        .into_iter()
        .chain(keys::names(keys::STORY))
        .chain(keys::names(keys::CRITERION))
        .chain(defaults_keys())
        .filter(|k| !["prd", "design", "command"].contains(k));
    for k in table_keys {
        let written = FULL.lines().any(|l| {
            l.trim_start().starts_with(&format!("{k} ="))
                || l.contains(&format!("[{k}]"))
                || l.contains(&format!(".{k}]"))
        });
        assert!(written, "{k} is not set by FULL");
    }
    assert_eq!(defaults_keys().len(), AGENT_KEYS.len() + LIMIT_KEYS.len());
}

#[test]
fn config_for_layers_base_then_defaults_then_the_story() {
    let f = p(FULL).unwrap();
    let base = crate::config::parse(
        "[agent]\nmodel = \"base\"\n[loop]\nmax_iterations = 3\ncompletion_marker = \"X\"\n\
         [budget]\nmax_tokens = 7\n",
        Path::new("ralph.toml"),
    )
    .unwrap();
    let a = f.config_for(&base, "A_1");
    assert_eq!(a.agent.model.as_deref(), Some("m2"));
    assert_eq!(a.loop_.max_iterations, Some(20));
    assert_eq!(a.loop_.completion_marker.as_deref(), Some("X"));
    assert_eq!(a.budget.max_cost_usd, Some(5.0));
    assert_eq!(a.budget.max_tokens, Some(1000));
    let b = f.config_for(&base, "B");
    assert_eq!(b.agent.model.as_deref(), Some("m1"));
    assert_eq!(b.budget.max_cost_usd, Some(2.0));
    assert_eq!(b.loop_.max_runtime, Some(Duration::from_secs(3600)));
    // Nothing set: the base as it was.
    let mut c = base.clone();
    StoryOverrides::default().apply(&mut c);
    assert_eq!(c.agent, base.agent);
}

#[test]
fn errors_are_located() {
    let e = p("version = 1\nname = \"x\"\n[[story]]\nid = \"A\"\ntitle = \"t\"\ndescription = \"d\"\ndepends_on = [\"A\"]\n").unwrap_err();
    assert_eq!((e.line, e.column), (Some(7), Some(15)));
    assert_eq!(e.key.as_deref(), Some("story[0].depends_on[0]"));
    let e = p("version = 1\nname = \"x\"\n[[story]]\ntitle = \"t\"\ndescription = \"d\"\n")
        .unwrap_err();
    assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("story[0].id")));
}

#[test]
fn branch_name_rules() {
    use super::checks::branch_name_problem as bad;
    for ok in ["feature", "a/b", "v1.2", "x_y-z", "naïve"] {
        assert_eq!(bad(ok), None, "{ok}");
    }
    for no in [
        "", "-x", "a b", "a..b", "a.lock", "a/.b", "a/", "/a", "a.", "a@{b", "a:b", "a~1", "a//b",
    ] {
        assert!(bad(no).is_some(), "{no:?}");
    }
}

#[test]
fn load_plan_hashes_the_bytes_and_reports_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stories.toml");
    std::fs::write(&path, FULL).unwrap();
    let f = load_plan(&path).unwrap();
    assert_eq!(f.hash, p(FULL).unwrap().hash);
    assert_eq!(f.path, path);
    let e = load_plan(&dir.path().join("nope.toml")).unwrap_err();
    assert!(e.message.contains("does not exist"), "{e}");
}

//! `stories.toml` through the real binary: every malformed plan exits 2 with file, line,
//! column, key and hint (ralph.toml's format), a valid plan is summarised, and the JSON
//! Schemas printed by `ralph schema` are the committed ones.

use crate::harness::*;

/// A story block: `deps` is the depends_on list as written.
fn story(id: &str, deps: &str) -> String {
    format!(
        "\n[[story]]\nid = \"{id}\"\ntitle = \"Story {id}\"\nlayer = \"service\"\n\
         depends_on = {deps}\ndescription = \"Build {id}.\"\n\
         [[story.criteria]]\nid = \"AC-1\"\ntext = \"it works\"\nrun = \"true\"\n"
    )
}

const HEAD: &str = "version = 1\nname = \"feature\"\n";

fn with_head(rest: &str) -> String {
    format!("{HEAD}{rest}")
}

fn cases() -> Vec<(&'static str, String)> {
    let one = story("S-1", "[]");
    vec![
        (
            "cycle_of_three",
            with_head(&format!(
                "{}{}{}",
                story("A", "[\"C\"]"),
                story("B", "[\"A\"]"),
                story("C", "[\"B\"]")
            )),
        ),
        (
            "unknown_dependency",
            with_head(&format!("{one}{}", story("S-2", "[\"S-3\"]"))),
        ),
        ("self_dependency", with_head(&story("S-1", "[\"S-1\"]"))),
        ("duplicate_story_id", with_head(&format!("{one}{one}"))),
        (
            "auto_criterion_without_run",
            with_head(&one.replace("run = \"true\"\n", "check = \"auto\"\n")),
        ),
        (
            "bad_check",
            with_head(&one.replace("run = \"true\"", "check = \"sometimes\"")),
        ),
        (
            "run_on_a_manual_criterion",
            with_head(&one.replace("run = \"true\"", "check = \"manual\"\nrun = \"true\"")),
        ),
        (
            "bad_layer",
            with_head(&one.replace("\"service\"", "\"backend\"")),
        ),
        (
            "unknown_top_level_key",
            format!("{HEAD}nmae = \"x\"\n{one}"),
        ),
        (
            "agent_key_at_top_level",
            format!("{HEAD}model = \"m\"\n{one}"),
        ),
        (
            "unknown_story_key",
            with_head(&one.replace("layer =", "layers =")),
        ),
        (
            "unknown_criteria_key",
            with_head(&one.replace("text =", "txt =")),
        ),
        (
            "unknown_story_agent_key",
            with_head(&format!("{one}  [story.agent]\nmodle = \"m\"\n")),
        ),
        (
            "agent_key_in_story_budget",
            with_head(&format!("{one}  [story.budget]\nmodel = \"m\"\n")),
        ),
        (
            "unknown_defaults_key",
            format!("{HEAD}[defaults]\nmax_iteration = 3\n{one}"),
        ),
        (
            "version_2",
            format!("version = 2\nname = \"feature\"\n{one}"),
        ),
        (
            "version_as_string",
            format!("version = \"1\"\nname = \"feature\"\n{one}"),
        ),
        ("missing_version", format!("name = \"feature\"\n{one}")),
        ("missing_name", format!("version = 1\n{one}")),
        (
            "bad_id_characters",
            with_head(&one.replace("\"S-1\"", "\"S 1/a\"")),
        ),
        (
            "plan_name_with_space",
            format!("version = 1\nname = \"my feature\"\n{one}"),
        ),
        (
            "plan_name_with_dots",
            format!("version = 1\nname = \"a..b\"\n{one}"),
        ),
        (
            "plan_name_lock_suffix",
            format!("version = 1\nname = \"x.lock\"\n{one}"),
        ),
        (
            "plan_name_leading_dash",
            format!("version = 1\nname = \"-x\"\n{one}"),
        ),
        (
            "missing_prd_file",
            format!("{HEAD}prd = \"docs/prd.md\"\n{one}"),
        ),
        ("empty_plan", HEAD.to_string()),
        (
            "duplicate_criterion_id",
            with_head(&format!(
                "{one}[[story.criteria]]\nid = \"AC-1\"\ntext = \"b\"\nrun = \"true\"\n"
            )),
        ),
        (
            "title_not_a_string",
            with_head(&one.replace("\"Story S-1\"", "42")),
        ),
        (
            "depends_on_a_string",
            with_head(&format!("{one}{}", story("S-2", "\"S-1\""))),
        ),
        (
            "affected_paths_not_a_list",
            with_head(&one.replace("layer =", "affected_paths = \"src/**\"\nlayer =")),
        ),
        (
            "affected_paths_item_not_a_string",
            with_head(&one.replace("layer =", "affected_paths = [\"src/**\", 3]\nlayer =")),
        ),
        (
            "missing_title",
            with_head(&one.replace("title = \"Story S-1\"\n", "")),
        ),
        (
            "missing_description",
            with_head(&one.replace("description = \"Build S-1.\"\n", "")),
        ),
        (
            "criterion_without_text",
            with_head(&one.replace("text = \"it works\"\n", "")),
        ),
        (
            "defaults_unknown_backend",
            format!("{HEAD}[defaults]\nbackend = \"claud\"\n{one}"),
        ),
        (
            "budget_negative_cost",
            with_head(&format!("{one}  [story.budget]\nmax_cost_usd = -1\n")),
        ),
        (
            "defaults_bad_duration",
            format!("{HEAD}[defaults]\nmax_runtime = \"10\"\n{one}"),
        ),
        (
            "story_as_a_single_table",
            with_head(&one.replace("[[story]]", "[story]")),
        ),
        (
            "syntax_error",
            with_head(&one.replace("id = \"S-1\"", "id = S-1")),
        ),
    ]
}

#[test]
fn malformed_plans_exit_2_with_located_messages() {
    for (name, toml) in cases() {
        let p = Project::new();
        p.write("stories.toml", &toml);
        let out = ralph_snapshot!(
            name = format!("plan_{name}"),
            p,
            ["stories", "check"],
            context = format!("----- stories.toml -----\n{toml}"),
        );
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: stories.toml"),
            "{name}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("hint: "),
            "{name}: no hint: {}",
            out.stderr
        );
        let first = out.stderr.lines().next().unwrap_or("");
        let mut loc = first
            .trim_start_matches("error: stories.toml:")
            .splitn(3, ':');
        let line = loc.next().and_then(|s| s.parse::<usize>().ok());
        let column = loc.next().and_then(|s| s.parse::<usize>().ok());
        assert!(
            line.is_some() && column.is_some(),
            "{name}: no line:column in {first:?}"
        );
        assert!(first.contains(": `"), "{name}: no key in {first:?}");
        assert!(out.stdout.is_empty(), "{name}: {}", out.stdout);
        assert!(!p.exists(".ralph"), "{name}: nothing may be created");
    }
}

#[test]
fn the_cycle_names_every_story_in_it() {
    let p = Project::new();
    let toml = with_head(&format!(
        "{}{}{}{}",
        story("A", "[\"C\"]"),
        story("B", "[\"A\"]"),
        story("C", "[\"B\"]"),
        story("D", "[]")
    ));
    p.write("stories.toml", &toml);
    let out = p.run(&["stories", "check"]);
    assert_eq!(out.code, 2);
    let line = out.stderr.lines().next().unwrap();
    for id in ["A", "B", "C"] {
        assert!(line.contains(&format!("{id} →")), "{line}");
    }
    assert!(!line.contains('D'), "{line}");
}

const VALID: &str = r#"version = 1
name = "provenance-engine"
prd = "docs/prd.md"

[defaults]
backend = "claude"
model = "claude-sonnet-4-5"
max_iterations = 20
max_cost_usd = 2.0

[[story]]
id = "STORY-001"
title = "Provenance table and migration"
layer = "data"
affected_paths = ["db/migrations/**"]
description = "The table."
  [[story.criteria]]
  id = "AC-1"
  text = "the migration applies"
  check = "auto"
  run = "true"
  [[story.criteria]]
  id = "AC-2"
  text = "reviewed by a human"
  check = "manual"

[[story]]
id = "STORY-002"
title = "Service"
layer = "service"
depends_on = ["STORY-001"]
description = "The service."
  [story.agent]
  model = "claude-opus-4-5"
  [story.budget]
  max_cost_usd = 5.0
  max_runtime = "30m"

[[story]]
id = "STORY-003"
title = "Docs"
layer = "docs"
depends_on = ["STORY-001"]
description = "The docs."

[[story]]
id = "STORY-004"
title = "API"
layer = "api"
depends_on = ["STORY-002", "STORY-003"]
description = "The API."
"#;

#[test]
fn a_valid_plan_is_summarised() {
    let p = Project::new();
    p.write("docs/prd.md", "# PRD\n");
    p.write("plans/feature.toml", VALID);
    ralph_snapshot!(p, ["stories", "check", "-f", "plans/feature.toml"]);
    let out = ralph_snapshot!(
        p,
        ["stories", "check", "-f", "plans/feature.toml", "--json"]
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["plan"], "provenance-engine");
    assert_eq!(v["stories"], 4);
    assert_eq!(v["integration_branch"], "ralph/provenance-engine");
    assert_eq!(
        v["order"],
        serde_json::json!(["STORY-001", "STORY-002", "STORY-003", "STORY-004"])
    );
    assert!(!p.exists(".ralph"));
}

#[test]
fn ralph_toml_is_checked_with_each_storys_overrides() {
    let p = Project::new();
    p.write("docs/prd.md", "# PRD\n");
    p.write("stories.toml", VALID);
    // A broken ralph.toml is reported as itself, located.
    p.write("ralph.toml", "[loop]\nmax_iterations = 0\n");
    let out = p.run(&["stories", "check"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("error: ralph.toml:2:18:"),
        "{}",
        out.stderr
    );
    // One that only fails once resolved (HOME as a writable path): named with the story.
    p.write(
        "ralph.toml",
        &format!("[sandbox]\nwritable = [{:?}]\n", path_str(&p.home)),
    );
    let out = p.run(&["stories", "check"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("story STORY-001"), "{}", out.stderr);
    // A valid one, with the plan's overrides on top: fine.
    p.write(
        "ralph.toml",
        "[agent]\nbackend = \"claude\"\nmodel = \"m\"\n",
    );
    let toml = VALID.replace("model = \"claude-opus-4-5\"", "fallback = [\"q\"]");
    p.write("stories.toml", &toml);
    let out = p.run(&["stories", "check"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_missing_plan_file_is_a_usage_error() {
    let p = Project::new();
    ralph_snapshot!(p, ["stories", "check"]);
    ralph_snapshot!(p, ["stories", "check", "-f", "nope.toml"]);
}

fn schema_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas")
        .join(name)
}

#[test]
fn schema_stories_is_json_naming_the_top_level_keys() {
    let p = Project::new();
    let out = p.run(&["schema", "stories"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let props = v["properties"].as_object().unwrap();
    for key in [
        "version",
        "name",
        "prd",
        "design",
        "architecture",
        "defaults",
        "story",
    ] {
        assert!(props.contains_key(key), "{key} missing");
    }
    assert_eq!(
        v["required"],
        serde_json::json!(["version", "name", "story"])
    );
    let story = &v["properties"]["story"]["items"]["properties"];
    assert!(story["criteria"]["items"]["properties"]["run"].is_object());
    // Which layers depends on the plan's architecture template: the schema gives their form.
    assert!(story["layer"]["pattern"].is_string(), "{}", story["layer"]);
    let out = p.run(&["schema", "config"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["properties"]["agent"]["properties"]["backend"]["enum"].is_array());
}

/// The committed schemas are what the binary prints; regenerate with
/// `cargo run -q -- schema stories > schemas/stories.schema.json` (and `config` for
/// `schemas/ralph.schema.json`).
#[test]
fn schema_files_in_the_repository_match_the_binary() {
    let p = Project::new();
    for (which, file) in [
        ("stories", "stories.schema.json"),
        ("config", "ralph.schema.json"),
    ] {
        let out = p.run(&["schema", which]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let committed = std::fs::read_to_string(schema_file(file)).unwrap_or_default();
        assert!(
            committed == out.stdout,
            "schemas/{file} differs from `ralph schema {which}`; regenerate it with \
             `cargo run -q -- schema {which} > schemas/{file}`"
        );
    }
}

//! `ralph plan`, `ralph templates` and `ralph skills` end to end: the fake agent as the
//! planner (one scripted call per attempt, told apart by its scope in `RALPH_STORY_ID`), real
//! git, the plan it writes run by `ralph stories run`.

use ralph_testkit::recording::Recording;
use ralph_testkit::{Script, Step};

use crate::harness::*;

const DESIGN: &str = "# Feature\n\n## Components\nA and B.\n\n## Data\nFiles.\n\n\
                      ## Interfaces\nNone.\n\n## Risks\nNone.\n";

fn header() -> &'static str {
    "version = 1\nname = \"feature\"\nprd = \"docs/prd.md\"\ndesign = \"docs/design/feature.md\"\n\
     architecture = \"layered-4\"\n\n"
}

fn story(id: &str, layer: &str, deps: &str, criterion: &str) -> String {
    format!(
        "[[story]]\nid = \"{id}\"\ntitle = \"Story {id}\"\nlayer = \"{layer}\"\n{deps}\
         affected_paths = [\"src/{id}.txt\"]\ndescription = \"Write src/{id}.txt.\"\n\
         [[story.criteria]]\nid = \"AC-1\"\ntext = \"the file exists\"\n{criterion}\n\n"
    )
}

/// The planner and the stories' agent in one script: the design call writes the design, the
/// stories calls copy `plan-<attempt>.toml` into place, a story's call writes its file.
fn planner(p: &Project) -> Script {
    let aux = p.aux.display();
    Script::new().record(p.aux.join("rec")).default_steps(vec![
        Step::shell(format!(
            "case \"$RALPH_STORY_ID\" in \
                 plan:*:design) mkdir -p docs/design; cp {aux}/design.md docs/design/feature.md;; \
                 plan:*:stories) n=$(cat {aux}/n 2>/dev/null || echo 0); n=$((n+1)); \
                   echo $n > {aux}/n; cp {aux}/plan-$n.toml stories.toml;; \
                 *) mkdir -p src; echo \"$RALPH_STORY_ID\" > src/$RALPH_STORY_ID.txt;; esac"
        )),
        Step::print("LOOP_COMPLETE"),
    ])
}

fn prompts(p: &Project) -> Vec<String> {
    Recording::read_all(&p.aux.join("rec"))
        .unwrap()
        .into_iter()
        .map(|r| r.stdin)
        .collect()
}

#[test]
fn a_refused_plan_goes_back_with_its_error_and_the_accepted_plan_runs_to_the_end() {
    let p = Project::git();
    p.write(".gitignore", "/.ralph/\n");
    p.write(
        "docs/prd.md",
        "# Feature\n\nTwo files, the second after the first.\n",
    );
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-qm", "prd"]);
    let auto = "check = \"auto\"\nrun = \"test -f src/A.txt\"";
    std::fs::write(p.aux.join("design.md"), DESIGN).unwrap();
    // 1: a cycle; 2: an auto criterion without `run`; 3: valid, B naming no dependency.
    let plans = [
        format!(
            "{}{}{}",
            header(),
            story("A", "data", "depends_on = [\"B\"]\n", auto),
            story("B", "service", "depends_on = [\"A\"]\n", auto)
        ),
        format!(
            "{}{}{}",
            header(),
            story("A", "data", "", auto),
            story("B", "service", "", "check = \"auto\"")
        ),
        format!(
            "{}{}{}",
            header(),
            story("A", "data", "", auto),
            story(
                "B",
                "service",
                "",
                "check = \"auto\"\nrun = \"test -f src/B.txt\""
            )
        ),
    ];
    for (i, plan) in plans.iter().enumerate() {
        std::fs::write(p.aux.join(format!("plan-{}.toml", i + 1)), plan).unwrap();
    }
    p.configure_text(&planner(&p), "max_iterations = 3");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-qm", "config"]);

    let out = p.run(&[
        "plan",
        "docs/prd.md",
        "--name",
        "feature",
        "--claude-agents",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Claude Code subagents for the template's layers and an orchestrator.
    for layer in ["data", "service", "api", "ui"] {
        let text = p.read(&format!(".claude/agents/ralph-{layer}.md"));
        assert!(
            text.starts_with(&format!("---\nname: ralph-{layer}\ndescription: ")),
            "{text}"
        );
    }
    let orchestrator = p.read(".claude/agents/ralph-orchestrator.md");
    assert!(
        orchestrator.contains("`ralph-service` subagent"),
        "{orchestrator}"
    );
    let seen = prompts(&p);
    assert_eq!(seen.len(), 4, "one design call and three plan attempts");
    assert!(seen[0].contains("docs/design/feature.md") && seen[0].contains("## Risks"));
    assert!(seen[1].contains("Architecture `layered-4`") && !seen[1].contains("refused"));
    assert!(
        seen[2].contains("refused") && seen[2].contains("A → B → A"),
        "the cycle reaches the second attempt: {}",
        seen[2]
    );
    assert!(
        seen[3].contains("an auto criterion needs `run`") && seen[3].contains("stories.toml:"),
        "the located error reaches the third attempt: {}",
        seen[3]
    );
    // B named no dependency: the template's default edge (service builds on data) is written.
    let written = p.read("stories.toml");
    assert!(written.contains("depends_on = [\"A\"]"), "{written}");
    assert!(
        out.stdout.contains("critical path: A → B (2 stories)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("(the template's default)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("4 agent calls"), "{}", out.stdout);
    let phases: Vec<(String, i64)> = p
        .db()
        .prepare("SELECT scope, COUNT(*) FROM runs GROUP BY scope ORDER BY scope")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        phases,
        [
            ("plan:feature:design".to_string(), 1),
            ("plan:feature:stories".to_string(), 3)
        ]
    );

    // The user reads it, commits it, runs it.
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-qm", "plan"]);
    let run = p.run(&["stories", "run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let log = p.git_cmd(&["log", "--format=%s", "ralph/feature"]);
    assert!(
        log.contains("A iteration 1") && log.contains("B iteration 1"),
        "{log}"
    );
    assert_eq!(p.git_cmd(&["show", "ralph/feature:src/B.txt"]).trim(), "B");
}

#[test]
fn a_plan_that_never_validates_ends_with_exit_3_and_the_error() {
    let p = Project::git();
    p.write("docs/prd.md", "# Feature\n");
    std::fs::write(p.aux.join("design.md"), DESIGN).unwrap();
    let bad = format!(
        "{}{}",
        header(),
        story("A", "gateway", "", "check = \"manual\"")
    );
    for i in 1..=2 {
        std::fs::write(p.aux.join(format!("plan-{i}.toml")), &bad).unwrap();
    }
    p.configure_text(&planner(&p), "");
    p.write(
        "ralph.toml",
        &format!("{}\n[plan]\nmax_attempts = 2\n", p.read("ralph.toml")),
    );
    let out = p.run(&["plan", "docs/prd.md", "--name", "feature"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("does not hold after 2 attempts")
            && out
                .stderr
                .contains("layer \"gateway\", which architecture \"layered-4\" does not have"),
        "{}",
        out.stderr
    );
    assert_eq!(prompts(&p).len(), 3);
}

#[test]
fn an_existing_plan_is_never_replaced_without_force() {
    let p = Project::git();
    p.write("docs/prd.md", "# Feature\n");
    p.write("stories.toml", "mine\n");
    p.configure_text(&Script::new(), "");
    let out = p.run(&["plan", "docs/prd.md"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("stories.toml exists already"),
        "{}",
        out.stderr
    );
    assert_eq!(p.read("stories.toml"), "mine\n");
}

#[test]
fn templates_list_and_show_name_layers_in_build_order() {
    let p = Project::new();
    let list = p.run(&["templates", "list"]);
    assert_eq!(list.code, 0);
    for line in [
        "layered-4        built-in   data → service → api → ui",
        "event-driven     built-in   events → bus → handlers → projections → api",
    ] {
        assert!(list.stdout.contains(line), "{}", list.stdout);
    }
    let show = p.run(&["templates", "show", "serverless"]);
    assert!(
        show.stdout
            .contains("default edges (a story that names no dependency depends on every story of the layers its layer builds on): functions → storage, api → functions, events → functions"),
        "{}",
        show.stdout
    );
}

#[test]
fn a_malformed_project_template_gets_a_located_error_and_a_good_one_replaces_the_builtin() {
    let p = Project::new();
    p.write(
        ".ralph/templates/layered-4.toml",
        "name = \"layered-4\"\ndescription = \"ours\"\n[[layer]]\nname = \"core\"\n\
         description = \"all of it\"\ndepends_on = [\"nope\"]\n",
    );
    let out = p.run(&["templates", "show", "layered-4"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(".ralph/templates/layered-4.toml:6:15")
            && out.stderr.contains("which is not a layer of the template"),
        "{}",
        out.stderr
    );
    p.write(
        ".ralph/templates/layered-4.toml",
        "name = \"layered-4\"\ndescription = \"ours\"\n[[layer]]\nname = \"core\"\n\
         description = \"all of it\"\n",
    );
    let out = p.run(&["templates", "list"]);
    assert!(
        out.stdout.contains("layered-4        project    core"),
        "{}",
        out.stdout
    );
    // A plan naming it may use its layers, and only those (and `other`).
    p.write(
        "stories.toml",
        "version = 1\nname = \"x\"\narchitecture = \"layered-4\"\n[[story]]\nid = \"A\"\n\
         title = \"a\"\nlayer = \"data\"\ndescription = \"d\"\n",
    );
    let out = p.run(&["stories", "check"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("stories.toml:7:9"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("layers of architecture \"layered-4\": core, other"),
        "{}",
        out.stderr
    );
}

#[test]
fn skills_are_listed_shown_exported_and_a_project_one_replaces_the_builtin() {
    let p = Project::new();
    let list = p.run(&["skills", "list"]);
    for name in [
        "create-prd",
        "design-solution",
        "solution-to-stories",
        "research-codebase-patterns",
        "research-database",
        "research-ui-ux",
    ] {
        assert!(list.stdout.contains(&format!("{name} ")), "{}", list.stdout);
    }
    let out = p.run(&["skills", "export", "design-solution"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let exported = p.read(".ralph/skills/design-solution.md");
    assert_eq!(
        exported,
        p.run(&["skills", "show", "design-solution"]).stdout
    );
    p.write(
        ".ralph/skills/design-solution.md",
        &exported
            .replace("## Risks", "## Hazards")
            .replace("{{prd}}", "{{prd_file}}"),
    );
    let out = p.run(&["skills", "show", "design-solution"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(".ralph/skills/design-solution.md:")
            && out
                .stderr
                .contains("{{prd_file}} is not one of the skill's inputs"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_skill_runs_as_one_accounted_call_and_its_output_is_checked() {
    let p = Project::git();
    let script = Script::new().default_steps(vec![
        Step::shell("mkdir -p docs; printf '## Structure\\n## Conventions\\n## Patterns to reuse\\n' > docs/survey.md"),
        Step::print("LOOP_COMPLETE"),
    ]);
    p.configure_text(&script, "");
    let args = [
        "skills",
        "run",
        "research-codebase-patterns",
        "--set",
        "topic=auth",
        "--set",
        "output_path=docs/survey.md",
    ];
    let out = p.run(&args);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("has no `## Pitfalls` section"),
        "{}",
        out.stderr
    );
    let missing = p.run(&[
        "skills",
        "run",
        "research-codebase-patterns",
        "--set",
        "topic=auth",
    ]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("needs `output_path`"),
        "{}",
        missing.stderr
    );
    let scopes: i64 = p
        .db()
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE scope = 'skill:research-codebase-patterns'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(scopes, 1);
}

#[test]
fn layer_sections_of_ralph_toml_get_located_errors() {
    let p = Project::new();
    let cases = [
        (
            "[layers.data]\nmodle = \"x\"\n",
            "ralph.toml:5:1: `layers.data.modle`: unknown key `modle` in [layers.data]",
        ),
        (
            "[layers.data]\ninstructions = \"nope.md\"\n",
            "ralph.toml:5:16: `layers.data.instructions`: \"nope.md\" is not a file",
        ),
        (
            "[layers.data]\ngates = [{ name = \"x\", run = \"true\", when = \"pre-merge\" }]\n",
            "a layer's gates run when its story claims completion",
        ),
        (
            "[layers.\"a b\"]\nmodel = \"m\"\n",
            "\"a b\" cannot be a layer name",
        ),
    ];
    for (section, expected) in cases {
        p.write(
            "ralph.toml",
            &format!("[agent]\nbackend = \"custom\"\ncommand = [\"true\"]\n{section}"),
        );
        p.write(
            "stories.toml",
            "version = 1\nname = \"x\"\n[[story]]\nid = \"A\"\ntitle = \"a\"\ndescription = \"d\"\n",
        );
        let out = p.run(&["stories", "check"]);
        assert_eq!(out.code, 2, "{section}");
        assert!(
            out.stderr.contains(expected) || out.stdout.contains(expected),
            "{section}: {}{}",
            out.stdout,
            out.stderr
        );
    }
}

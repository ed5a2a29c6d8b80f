//! Per-layer and per-tier agents in `ralph stories run`: `[layers.<name>]` (backend, model,
//! instructions, gates) and `[routing]` (tiers by layer, complexity and kind; escalation after
//! the same failure for `plateau_iterations`), through the real binary with fake Claude Code
//! programs on PATH.

use std::collections::BTreeMap;

use ralph_testkit::script::ClaudeResult;
use ralph_testkit::{Script, Step};

use crate::harness::*;
use crate::stories_run::{repo, story};

/// `[layers.<name>]` in ralph.toml: every story of the layer runs on its backend and model,
/// gets its instructions in the prompt and must pass its gates; the other layers' stories get
/// none of it.
#[test]
fn a_layers_backend_model_instructions_and_gates_apply_to_its_stories_only() {
    let p = repo();
    let custom = Script::new()
        .record(p.aux.join("rec-custom"))
        .default_steps(vec![
            Step::shell("mkdir -p src; echo \"$RALPH_STORY_ID\" > src/$RALPH_STORY_ID.txt"),
            Step::print("LOOP_COMPLETE"),
        ]);
    let claude = Script::new()
        .record(p.aux.join("rec-claude"))
        .default_steps(vec![
            Step::shell("mkdir -p src; echo \"$RALPH_STORY_ID\" > src/$RALPH_STORY_ID.txt"),
            Step::claude_result(ClaudeResult::success("done\nLOOP_COMPLETE").cost_usd(0.01)),
        ]);
    let path = fake_claude(&p, &claude);
    p.write(
        "docs/agents/service.md",
        "Services return errors as values.\n",
    );
    let gate_ran = p.aux.join("svc-gate-ran");
    p.configure(
        &custom,
        "text",
        "max_iterations = 2",
        &format!(
            "[layers.service]\nbackend = \"claude\"\nmodel = \"claude-haiku-4-5\"\n\
             instructions = \"docs/agents/service.md\"\n\
             gates = [{{ name = \"svc\", run = \"touch {}\" }}]\n",
            gate_ran.display()
        ),
    );
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-qm", "layers"]);
    let plan = format!(
        "version = 1\nname = \"f\"\n\n{}{}",
        story("A", &[]).replace("layer = \"service\"", "layer = \"data\""),
        story("B", &["A"])
    );
    p.write("stories.toml", &plan);
    let out = Out::from(
        p.ralph()
            .args(["stories", "run"])
            .env("PATH", &path)
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let data = ralph_testkit::Recording::read_all(&p.aux.join("rec-custom")).unwrap();
    let service = ralph_testkit::Recording::read_all(&p.aux.join("rec-claude")).unwrap();
    assert_eq!((data.len(), service.len()), (1, 1));
    assert!(
        !data[0].stdin.contains("Instructions for"),
        "{}",
        data[0].stdin
    );
    assert!(
        service[0]
            .argv
            .windows(2)
            .any(|w| w[0] == "--model" && w[1] == "claude-haiku-4-5"),
        "{:?}",
        service[0].argv
    );
    assert!(
        service[0]
            .stdin
            .contains("Instructions for the service layer:\nServices return errors as values."),
        "{}",
        service[0].stdin
    );
    assert!(gate_ran.exists(), "the layer's gate did not run");
    // The fake reports another model than the one asked for: said, and recorded as it ran.
    assert!(
        out.stderr.contains(
            "[B] warning: iteration 1: model claude-haiku-4-5 was asked for, the agent reports \
             it ran claude-sonnet-4-5"
        ),
        "{}",
        out.stderr
    );
}

/// `[routing]`: each story's iterations run on its tier's model (argv, `RALPH_MODEL`, the
/// recorded model); a story failing the same criterion moves up a tier after exactly
/// `plateau_iterations` iterations, and only then; a story no rule matches runs on the
/// configured agent.
#[test]
fn routing_puts_each_story_on_its_tier_and_escalates_after_exactly_the_plateau() {
    let p = repo();
    let aux = p.aux.display().to_string();
    // E passes only on the strong tier; the others on any.
    std::fs::write(p.aux.join("needs-strong-E"), "").unwrap();
    // A `claude` on PATH that is the fake agent reporting the model it was asked for, as the
    // real one does (one script per model).
    let bin = p.aux.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for model in ["claude-haiku-4-5", "claude-opus-4-5"] {
        Script::new()
            .record(p.aux.join("rec-claude"))
            .default_steps(vec![
                Step::shell(format!(
                    "mkdir -p src; case \"$RALPH_MODEL\" in *opus*) echo ok > src/$RALPH_STORY_ID.txt;; \
                     *) [ -f {aux}/needs-strong-$RALPH_STORY_ID ] || echo ok > src/$RALPH_STORY_ID.txt;; esac"
                )),
                Step::claude_result(
                    ClaudeResult::success("done\nLOOP_COMPLETE")
                        .cost_usd(0.01)
                        .model(model),
                ),
            ])
            .write_to(p.aux.join(format!("{model}.json")))
            .unwrap();
    }
    let wrapper = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '2.1.197 (Claude Code)'; exit 0; fi\n\
         FAKE_AGENT_SCRIPT={aux}/$RALPH_MODEL.json exec {agent} \"$@\"\n",
        agent = ralph_testkit::fake_agent_path().display(),
    );
    std::fs::write(bin.join("claude"), wrapper).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("claude"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let custom = Script::new()
        .record(p.aux.join("rec-custom"))
        .default_steps(vec![
            Step::shell("mkdir -p src; echo ok > src/$RALPH_STORY_ID.txt"),
            Step::print("LOOP_COMPLETE"),
        ]);
    p.configure(
        &custom,
        "text",
        "max_iterations = 5",
        "[routing]\nplateau_iterations = 2\n\
         tier = [{ name = \"cheap\", models = [\"claude:claude-haiku-4-5\"] }, \
                 { name = \"strong\", models = [\"claude:claude-opus-4-5\"] }]\n\
         rule = [{ layer = \"docs\", tier = \"cheap\" }, { complexity = \"high\", tier = \"strong\" }]\n",
    );
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-qm", "routing"]);
    let docs = |id: &str| story(id, &[]).replace("layer = \"service\"", "layer = \"docs\"");
    let plan = format!(
        "version = 1\nname = \"f\"\n\n{}{}{}{}",
        docs("D"),
        docs("E"),
        story("H", &[]).replace(
            "layer = \"service\"",
            "layer = \"service\"\ncomplexity = \"high\""
        ),
        story("O", &[]),
    );
    p.write("stories.toml", &plan);
    let out = Out::from(
        p.ralph()
            .args(["stories", "run", "--parallel", "2"])
            .env("PATH", &path)
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut models: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in ralph_testkit::Recording::read_all(&p.aux.join("rec-claude")).unwrap() {
        let m = r
            .argv
            .windows(2)
            .find(|w| w[0] == "--model")
            .map(|w| w[1].clone());
        assert_eq!(
            m.as_ref(),
            r.env.get("RALPH_MODEL"),
            "argv and RALPH_MODEL agree"
        );
        models
            .entry(r.env["RALPH_STORY_ID"].clone())
            .or_default()
            .push(m.unwrap_or_default());
    }
    let (haiku, opus) = (
        "claude-haiku-4-5".to_string(),
        "claude-opus-4-5".to_string(),
    );
    assert_eq!(models["D"], std::slice::from_ref(&haiku));
    assert_eq!(models["H"], std::slice::from_ref(&opus));
    assert_eq!(
        models["E"],
        [haiku.clone(), haiku.clone(), opus.clone()],
        "{models:?}"
    );
    assert!(!models.contains_key("O"), "{models:?}");
    assert!(!out.stderr.contains("was asked for"), "{}", out.stderr);
    let custom = ralph_testkit::Recording::read_all(&p.aux.join("rec-custom")).unwrap();
    assert_eq!(custom.len(), 1);
    assert_eq!(custom[0].env["RALPH_STORY_ID"], "O");
    assert!(
        out.stderr.contains(
            "[E] escalated from claude:claude-haiku-4-5 to tier strong (claude:claude-opus-4-5): \
             the same failing checks (AC-1:1) for 2 iterations"
        ),
        "{}",
        out.stderr
    );
    // Recorded: the event, and each iteration's model.
    let db = p.db();
    let escalated: Vec<(i64, String)> = db
        .prepare("SELECT iteration, payload FROM events WHERE kind = 'story.escalated'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(escalated.len(), 1, "{escalated:?}");
    assert_eq!(escalated[0].0, 2);
    let e_models: Vec<String> = db
        .prepare(
            "SELECT i.model FROM iterations i JOIN runs r ON r.id = i.run_id \
             WHERE r.scope = 'E' ORDER BY i.n",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(e_models, [haiku.clone(), haiku, opus]);
    // Shown by status: the tier moved to and the model it ran on.
    let status = p.run(&["stories", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let e = v["stories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "E")
        .unwrap();
    assert_eq!(
        (&e["escalated_to"], &e["model"]),
        (
            &serde_json::json!("strong"),
            &serde_json::json!("claude-opus-4-5")
        )
    );
    let d = v["stories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "D")
        .unwrap();
    assert!(d["escalated_to"].is_null(), "{d}");
    let text = p.run(&["stories", "status"]);
    assert!(
        text.stdout
            .contains("escalated to tier strong (claude-opus-4-5)"),
        "{}",
        text.stdout
    );
}

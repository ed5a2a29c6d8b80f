//! The end-to-end proof runs of all five installable CLIs (`proof-*`): each wrote hello.txt,
//! ran a shell command and said LOOP_COMPLETE.

use ralph_agents::{
    AgentOutcome, ClaudeStreamParser, CodexJsonParser, CopilotJsonParser, CostSource,
    GeminiStreamParser, OpencodeJsonParser, StreamParser, Tokens,
};

use crate::{assert_cost, assert_fixtures_match_reference, capture_in, fixture_names_in, run};

const DIR: &str = "proof";
const FINAL: &str = "I created hello.txt and verified it. LOOP_COMPLETE";

fn parse(name: &str, parser: &mut dyn StreamParser) -> AgentOutcome {
    let (stdout, exit, stderr) = capture_in(DIR, name);
    assert!(exit.success(), "{name}");
    run(parser, &stdout, exit, &stderr).1
}

#[test]
fn every_fixture_is_covered_and_matches_the_reference() {
    let mut expected: Vec<String> = ["claude", "codex", "copilot", "gemini", "opencode"]
        .iter()
        .flat_map(|c| [format!("proof-{c}.jsonl"), format!("proof-{c}.stderr")])
        .collect();
    expected.sort();
    assert_eq!(fixture_names_in(DIR), expected);
    assert_fixtures_match_reference(DIR, "proof-");
}

#[test]
fn every_cli_finished_the_job() {
    let scenario = Tokens {
        input: 3600,
        output: 240,
        cache_read: 900,
        cache_write: 0,
    };
    let cases: Vec<(&str, Box<dyn StreamParser>, Option<Tokens>)> = vec![
        (
            "proof-claude.jsonl",
            Box::new(ClaudeStreamParser::default()),
            Some(Tokens {
                cache_write: 300,
                ..scenario
            }),
        ),
        (
            "proof-codex.jsonl",
            Box::new(CodexJsonParser::default()),
            Some(scenario),
        ),
        (
            "proof-gemini.jsonl",
            Box::new(GeminiStreamParser::default()),
            Some(scenario),
        ),
        (
            "proof-opencode.jsonl",
            Box::new(OpencodeJsonParser::default()),
            Some(scenario),
        ),
        // No usage file was written in the proof run.
        (
            "proof-copilot.jsonl",
            Box::new(CopilotJsonParser::default()),
            None,
        ),
    ];
    for (name, mut parser, usage) in cases {
        let out = parse(name, parser.as_mut());
        assert_eq!(out.final_text, FINAL, "{name}");
        assert_eq!(out.error, None, "{name}");
        assert_eq!(out.usage, usage, "{name}");
        assert_eq!((out.unknown_lines, out.malformed_lines), (0, 0), "{name}");
        match name {
            "proof-claude.jsonl" => assert_eq!(out.cost_source, CostSource::Reported),
            "proof-opencode.jsonl" => {
                assert_eq!(out.cost_source, CostSource::Reported);
                assert_cost(out.cost_usd, 0.01467);
            }
            _ => {
                assert_eq!(out.cost_source, CostSource::Unknown, "{name}");
                assert_eq!(out.cost_usd, None, "{name}");
            }
        }
    }
}

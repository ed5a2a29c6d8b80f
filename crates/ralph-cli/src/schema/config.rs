//! `ralph schema config`: ralph.toml, section by section from the parser's key tables.

use serde_json::{json, Map, Value};

use super::{
    boolean, choice, document, duration, nonempty, positive, string, strings, table, whole,
};
use crate::config::validate::{
    section_keys, GATE_WHENS, NETWORK_MODES, PERMISSION_MODES, PROMPT_VIAS, RETRY_STRATEGIES,
    SANDBOX_MODES, SECTIONS,
};

/// The schema of one key of a section; `None` for a key this table does not know (a test
/// checks there is none).
pub(super) fn key(section: &str, key: &str) -> Option<Value> {
    Some(match (section, key) {
        ("agent", "backend") => choice(crate::config::backend_names()),
        ("agent", "model") | ("loop", "prompt_file" | "completion_marker") => nonempty(),
        ("agent", "args" | "priority" | "fallback" | "allowed_tools") => strings(),
        ("agent", "command") => {
            json!({"type": "array", "items": {"type": "string"}, "minItems": 1})
        }
        ("agent", "prompt_via") => choice(PROMPT_VIAS),
        ("agent", "output") => choice(ralph_agents::OutputFormat::NAMES),
        ("agent", "permissions") => choice(PERMISSION_MODES),
        ("loop", "max_iterations" | "max_consecutive_failures") => whole(1),
        ("loop", "max_runtime" | "iteration_timeout" | "idle_timeout")
        | ("retry", "base_delay" | "max_delay")
        | ("gates", "timeout") => duration(),
        ("budget", "max_tokens") => whole(1),
        ("budget", "max_cost_usd" | "daily_usd" | "monthly_usd" | "iteration_estimate_usd") => {
            positive()
        }
        ("budget", "alert_at") => json!({
            "type": "array",
            "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
        }),
        ("budget", "stop_before_exceeding" | "allow_unenforced") | ("git", "require") => boolean(),
        ("budget", "ledger") | ("context", "summary_model") => string(),
        ("git", "checkpoint_every") => whole(0),
        ("git", "max_untracked_mb") => whole(1),
        ("git", "allow_ref_rewrites") | ("safety", "protected_paths" | "blocked_commands") => {
            strings()
        }
        ("safety", "max_files_changed" | "no_progress_iterations" | "max_output_mb") => whole(1),
        ("context", "notes_max_tokens") => whole(100),
        ("plan", "max_attempts") => json!({"type": "integer", "minimum": 1, "maximum": 20}),
        ("plan", "architecture" | "design_dir") => nonempty(),
        ("layers", "instructions" | "model") => nonempty(),
        ("routing", "plateau_iterations") => whole(1),
        ("routing", "default_tier") => nonempty(),
        ("routing", "tier") => json!({"type": "array", "items": {
            "type": "object", "additionalProperties": false, "required": ["name", "models"],
            "properties": {"name": nonempty(), "models": json!({"type": "array", "minItems": 1, "items": {"type": "string"}})}
        }}),
        ("routing", "rule") => json!({"type": "array", "items": {
            "type": "object", "additionalProperties": false, "required": ["tier"],
            "properties": {
                "layer": nonempty(),
                "complexity": choice(crate::config::validate::COMPLEXITIES),
                "kind": choice(crate::config::validate::CALL_KINDS),
                "tier": nonempty(),
            }
        }}),
        ("layers", "backend") => choice(crate::config::backend_names()),
        ("layers", "gates") => {
            json!({"type": "array", "items": section_with("gates", &["name", "run"])})
        }
        ("retry", "strategy") => choice(RETRY_STRATEGIES),
        ("gates", "name" | "run") => nonempty(),
        ("gates", "when") => choice(GATE_WHENS),
        ("pricing", "context_window") => whole(1),
        ("pricing", "input" | "output" | "cache_read" | "cache_write") => {
            json!({"type": "number", "minimum": 0})
        }
        ("sandbox" | "sandbox.gates", "mode") => choice(SANDBOX_MODES),
        ("sandbox" | "sandbox.gates", "network") => choice(NETWORK_MODES),
        ("sandbox" | "sandbox.gates", "required") => boolean(),
        ("sandbox" | "sandbox.gates", "writable" | "allow_hosts") => strings(),
        ("sandbox", "gates") => section_with("sandbox.gates", &[]),
        _ => return None,
    })
}

fn section_with(name: &str, required: &[&str]) -> Value {
    let mut props = Map::new();
    for k in section_keys(name) {
        props.insert((*k).to_string(), key(name, k).unwrap_or_else(|| json!({})));
    }
    table(props, required)
}

pub fn config_schema() -> Value {
    let mut props = Map::new();
    for s in SECTIONS {
        let v = match *s {
            "gates" => json!({"type": "array", "items": section_with("gates", &["name", "run"])}),
            "layers" => json!({
                "type": "object",
                "description": "what every story of a layer runs with, by layer name",
                "additionalProperties": section_with("layers", &[]),
            }),
            "pricing" => json!({
                "type": "object",
                "description": "USD per million tokens, by model name",
                "additionalProperties": section_with("pricing", &[]),
            }),
            other => section_with(other, &[]),
        };
        props.insert((*s).to_string(), v);
    }
    document("ralph.toml", table(props, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_parser_accepts_has_a_schema() {
        let mut missing = Vec::new();
        for s in SECTIONS.iter().copied().chain(["sandbox.gates"]) {
            for k in section_keys(s) {
                if key(s, k).is_none() {
                    missing.push(format!("{s}.{k}"));
                }
            }
        }
        assert!(missing.is_empty(), "keys without a schema: {missing:?}");
    }
}

//! JSON Schemas (draft 2020-12) of ralph.toml and stories.toml, for editors and for agents
//! that write plans. Both are generated from the key tables the parsers check against
//! (`config/validate/mod.rs`, `plan/keys.rs`), never kept by hand; tests fail when a key has
//! no schema, and the e2e tests when the committed `schemas/*.json` differ from the output.

mod config;
mod stories;

use serde_json::{json, Map, Value};

pub use config::config_schema;
pub use stories::stories_schema;

/// The printed form: pretty, with a final newline (the committed files are this text).
pub fn render(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}

fn string() -> Value {
    json!({"type": "string"})
}

fn nonempty() -> Value {
    json!({"type": "string", "minLength": 1})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn choice(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

fn whole(min: i64) -> Value {
    json!({"type": "integer", "minimum": min})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn positive() -> Value {
    json!({"type": "number", "exclusiveMinimum": 0})
}

fn duration() -> Value {
    json!({
        "type": "string",
        "pattern": "^\\s*([0-9]+(\\.[0-9]+)?\\s*(ms|s|m|h|d)\\s*)+$",
        "description": "a duration: a number with a unit (ms, s, m, h, d), combined as in \"1h30m\""
    })
}

/// A closed table (`additionalProperties: false`, as the parsers refuse unknown keys).
fn table(properties: Map<String, Value>, required: &[&str]) -> Value {
    let mut t = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    });
    if !required.is_empty() {
        t["required"] = json!(required);
    }
    t
}

fn document(title: &str, body: Value) -> Value {
    let mut doc = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
    });
    if let (Some(d), Some(b)) = (doc.as_object_mut(), body.as_object()) {
        d.extend(b.clone());
    }
    doc
}

//! A small instance of a JSON schema, for side requests that demand
//! structured output (Gemini's model router, `--output-schema`, title
//! generators with `response_format`). The CLIs validate or parse these
//! answers, so a free-text reply would fail them.
//!
//! Supports what those schemas use: `type` (also Gemini's upper-case
//! `OBJECT`/`STRING`, and type arrays), `properties`, `items`, `enum`,
//! `const`, `default`, `minimum`, `minLength`, `minItems`, `anyOf`/`oneOf`
//! (first branch), `allOf` (merged) and local `$ref`s.

use serde_json::{Map, Value};

/// Nesting limit, so a recursive `$ref` cannot loop forever.
const MAX_DEPTH: usize = 24;

/// A value that satisfies `schema` (as far as the supported keywords go).
pub fn instance(schema: &Value) -> Value {
    instance_at(schema, schema, 0)
}

fn instance_at(schema: &Value, root: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let Some(obj) = schema.as_object() else {
        // `true` (anything goes) or a malformed schema.
        return Value::Object(Map::new());
    };
    if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
        return match resolve_ref(root, target) {
            Some(resolved) => instance_at(resolved, root, depth + 1),
            None => Value::Object(Map::new()),
        };
    }
    if let Some(v) = obj.get("const") {
        return v.clone();
    }
    if let Some(first) = obj
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return first.clone();
    }
    if let Some(v) = obj.get("default") {
        return v.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = obj.get(key).and_then(Value::as_array) {
            // Prefer a non-null branch: `null` is valid but useless to a parser.
            let pick = branches
                .iter()
                .find(|b| type_of(b).as_deref() != Some("null"))
                .or_else(|| branches.first());
            if let Some(branch) = pick {
                return instance_at(branch, root, depth + 1);
            }
        }
    }
    if let Some(parts) = obj.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in parts {
            match instance_at(part, root, depth + 1) {
                Value::Object(m) => merged.extend(m),
                other if parts.len() == 1 => return other,
                _ => {}
            }
        }
        return Value::Object(merged);
    }
    let ty = type_of(schema).unwrap_or_else(|| {
        if obj.contains_key("properties") {
            "object".to_string()
        } else if obj.contains_key("items") {
            "array".to_string()
        } else {
            "object".to_string()
        }
    });
    match ty.as_str() {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = obj.get("properties").and_then(Value::as_object) {
                // Every property, not just the required ones: extra known
                // properties are valid, and some callers read optional ones.
                for (name, prop) in props {
                    out.insert(name.clone(), instance_at(prop, root, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let n = obj.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = obj.get("items").cloned().unwrap_or(Value::Bool(true));
            Value::Array(
                (0..n)
                    .map(|_| instance_at(&item, root, depth + 1))
                    .collect(),
            )
        }
        "string" => {
            let min = obj.get("minLength").and_then(Value::as_u64).unwrap_or(0);
            let mut s = String::from("mock");
            while (s.len() as u64) < min {
                s.push('x');
            }
            Value::String(s)
        }
        "integer" => {
            let min = number_bound(obj).unwrap_or(0.0);
            Value::from(min.ceil() as i64)
        }
        "number" => Value::from(number_bound(obj).unwrap_or(0.0)),
        "boolean" => Value::Bool(false),
        "null" => Value::Null,
        _ => Value::Object(Map::new()),
    }
}

/// The lowest allowed number, if the schema bounds it.
fn number_bound(obj: &Map<String, Value>) -> Option<f64> {
    let min = obj.get("minimum").and_then(Value::as_f64);
    let exclusive = obj
        .get("exclusiveMinimum")
        .and_then(Value::as_f64)
        .map(|m| m + 1.0);
    match (min, exclusive) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The schema's type, lower-cased (Gemini writes `OBJECT`), first non-null
/// entry of a type array.
fn type_of(schema: &Value) -> Option<String> {
    match schema.get("type")? {
        Value::String(s) => Some(s.to_ascii_lowercase()),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| !t.eq_ignore_ascii_case("null"))
            .or_else(|| types.iter().filter_map(Value::as_str).next())
            .map(str::to_ascii_lowercase),
        _ => None,
    }
}

/// `#/$defs/Name`, `#/definitions/Name`, or any other local JSON pointer.
fn resolve_ref<'a>(root: &'a Value, target: &str) -> Option<&'a Value> {
    let pointer = target.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    root.pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gemini_router_schema() {
        let schema = json!({"type": "object", "properties": {
            "complexity_reasoning": {"type": "string"},
            "complexity_score": {"type": "integer", "minimum": 1, "maximum": 100}},
            "required": ["complexity_reasoning", "complexity_score"]});
        assert_eq!(
            instance(&schema),
            json!({"complexity_reasoning": "mock", "complexity_score": 1})
        );
    }

    #[test]
    fn gemini_uppercase_types_enums_and_arrays() {
        let schema = json!({"type": "OBJECT", "properties": {
            "mode": {"type": "STRING", "enum": ["fast", "slow"]},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 2},
            "ok": {"type": "BOOLEAN"},
            "n": {"type": ["number", "null"], "exclusiveMinimum": 0}}});
        assert_eq!(
            instance(&schema),
            json!({"mode": "fast", "tags": ["mock", "mock"], "ok": false, "n": 1.0})
        );
    }

    #[test]
    fn refs_any_of_all_of_and_const() {
        let schema = json!({
        "$defs": {"Item": {"type": "object", "properties": {"k": {"const": 7}}}},
        "type": "object",
        "properties": {
            "item": {"$ref": "#/$defs/Item"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 6}]},
            "both": {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}},
                                {"type": "object", "properties": {"b": {"type": "boolean"}}}]}
        }});
        assert_eq!(
            instance(&schema),
            json!({"item": {"k": 7}, "maybe": "mockxx", "both": {"a": 0, "b": false}})
        );
    }

    #[test]
    fn recursive_refs_terminate() {
        let schema = json!({"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}},
                            "$ref": "#/$defs/N"});
        let v = instance(&schema);
        assert!(v.is_object());
    }
}

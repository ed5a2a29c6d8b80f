//! `ralph schema stories`: stories.toml, from `plan/keys.rs` (the tables the parser checks
//! against); `[defaults]`, `[story.agent]` and `[story.budget]` reuse ralph.toml's key schemas.

use serde_json::{json, Map, Value};

use super::{choice, document, nonempty, strings, table};
use crate::config::validate::AGENT_KEYS;
use crate::plan::keys::{self, limit_section, Key, Kind, LIMIT_KEYS};

fn overrides(names: &[&str]) -> Value {
    let mut props = Map::new();
    for k in names {
        let section = if AGENT_KEYS.contains(k) {
            "agent"
        } else {
            limit_section(k)
        };
        props.insert(
            (*k).to_string(),
            super::config::key(section, k).unwrap_or_else(|| json!({})),
        );
    }
    table(props, &[])
}

fn kind(k: &Key, table_of: &dyn Fn(&str) -> Value) -> Value {
    let mut v = match k.kind {
        Kind::Version => json!({"const": 1}),
        Kind::Text | Kind::Path => nonempty(),
        Kind::Id => json!({"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}),
        Kind::BranchName => json!({
            "type": "string",
            "minLength": 1,
            "pattern": "^(?!-)(?!.*\\.\\.)(?!.*@\\{)(?!.*//)(?!/)(?!.*/$)(?!.*\\.$)(?!.*\\.lock(/|$))(?!(.*/)?\\.)[^\\x00-\\x20~^:?*\\[\\\\\\x7f]+$"
        }),
        Kind::Choice(values) => choice(values),
        Kind::Strings => strings(),
        Kind::Table => table_of(k.name),
        Kind::Tables => json!({"type": "array", "items": table_of(k.name)}),
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("description".into(), json!(k.doc));
    }
    v
}

fn object(keys: &[Key], table_of: &dyn Fn(&str) -> Value) -> Value {
    let mut props = Map::new();
    for k in keys {
        props.insert(k.name.to_string(), kind(k, table_of));
    }
    let required: Vec<&str> = keys.iter().filter(|k| k.required).map(|k| k.name).collect();
    table(props, &required)
}

pub fn stories_schema() -> Value {
    let criterion = object(keys::CRITERION, &|_| json!({}));
    let story = object(keys::STORY, &|name| match name {
        "criteria" => criterion.clone(),
        "agent" => overrides(AGENT_KEYS),
        _ => overrides(LIMIT_KEYS),
    });
    let top = object(keys::TOP, &|name| match name {
        "story" => story.clone(),
        _ => overrides(&keys::defaults_keys()),
    });
    let mut top = top;
    top["properties"]["story"]["minItems"] = json!(1);
    document("stories.toml", top)
}

//! The walk over stories.toml, in file order (the first problem reported is the topmost):
//! the top level, `[defaults]`, each `[[story]]` with its `[story.agent]` and `[story.budget]`.
//! Values are checked by ralph.toml's [`Walker`], so a key means and is checked the same in
//! both files.

#![expect(
    clippy::result_large_err,
    reason = "ConfigError's public shape is the CLI contract; an error ends the parse"
)]

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use ralph_stories::{Layer, Plan, Story};
use toml_edit::{ImDocument, Item, TableLike, Value};

use super::keys::{self, defaults_keys, names, LIMIT_KEYS};
use super::{checks, graph, layers, PlanFile, StoryOverrides};
use crate::config::text::{found, found_value, suggest};
use crate::config::validate::{entries, Entry, Result, Walker, AGENT_KEYS};
use crate::config::ConfigError;

/// Where the parts of one story are, for errors found after the walk (the graph's).
#[derive(Debug, Default, Clone)]
pub(super) struct StorySpans {
    pub id: Option<Range<usize>>,
    /// Each `depends_on` item's span, in order.
    pub deps: Vec<Option<Range<usize>>>,
    /// The `layer` value's span, when the story names one.
    pub layer: Option<Range<usize>>,
}

pub(super) fn parse(src: &str, file: &Path) -> Result<PlanFile> {
    let doc = ImDocument::parse(src).map_err(|e| crate::config::syntax::error(src, file, &e))?;
    let mut w = Walker::new(src, file);
    let root = doc.as_table();
    let mut version = None;
    let mut name = None;
    let mut plan = Plan {
        name: String::new(),
        prd: None,
        design: None,
        architecture: None,
        stories: Vec::new(),
    };
    let mut defaults = StoryOverrides::default();
    let mut overrides = BTreeMap::new();
    let mut spans = Vec::new();
    let mut arch_span = None;
    for (key, item) in root.iter() {
        let e = Entry {
            section: None,
            name: key,
            item,
            key_span: root.key(key).and_then(|k| k.span()),
        };
        w.record(&e);
        match key {
            "version" => version = Some(checks::version(&w, &e)?),
            "name" => name = Some(checks::plan_name(&w, &e)?),
            "prd" => plan.prd = Some(checks::existing_path(&w, &e)?),
            "design" => plan.design = Some(checks::existing_path(&w, &e)?),
            "architecture" => {
                plan.architecture = Some(text(&w, &e, "layered-4")?);
                arch_span = e.span();
            }
            "defaults" => defaults = overrides_table(&mut w, &e, Some("[defaults]"))?,
            "story" => {
                for (i, (table, span)) in tables(&w, &e, "story")?.into_iter().enumerate() {
                    let (story, o, s) = story(&mut w, i, table, span)?;
                    if !o.is_empty() {
                        overrides.insert(story.id.clone(), o);
                    }
                    plan.stories.push(story);
                    spans.push(s);
                }
            }
            _ => return Err(unknown(&w, &e, "at the top level", &names(keys::TOP))),
        }
    }
    plan.name = name.unwrap_or_default();
    required(file, version.is_some(), &plan)?;
    graph::check(&w, &plan, &spans)?;
    layers::check(&w, &plan, &spans, arch_span)?;
    Ok(PlanFile {
        plan,
        path: file.to_path_buf(),
        hash: String::new(),
        defaults,
        overrides,
    })
}

/// The keys a plan cannot do without. Their absence is reported at the top of the file, where
/// they are expected.
fn required(file: &Path, has_version: bool, plan: &Plan) -> Result<()> {
    let missing = |key: &str, message: String, hint: &str| ConfigError {
        file: file.to_path_buf(),
        line: Some(1),
        column: Some(1),
        key: Some(key.to_string()),
        message,
        hint: Some(hint.to_string()),
    };
    if !has_version {
        return Err(missing(
            "version",
            "`version` is missing".into(),
            "start the file with version = 1",
        ));
    }
    if plan.name.is_empty() {
        return Err(missing(
            "name",
            "`name` is missing".into(),
            "add name = \"my-feature\": the integration branch is ralph/<name>",
        ));
    }
    if plan.stories.is_empty() {
        return Err(missing(
            "story",
            "the plan has no stories".into(),
            "add at least one [[story]] with id, title and description",
        ));
    }
    Ok(())
}

/// A table with where it starts.
pub(crate) type Located<'i> = (&'i dyn TableLike, Option<Range<usize>>);

/// `[[name]]` blocks, or `name = [{ … }, { … }]`.
pub(crate) fn tables<'i>(w: &Walker, e: &Entry<'i>, what: &str) -> Result<Vec<Located<'i>>> {
    let label = e.path();
    let hint = format!(
        "write [[{}]] (double brackets) above each one",
        header(&label)
    );
    match e.item {
        Item::ArrayOfTables(a) => Ok(a.iter().map(|t| (t as &dyn TableLike, t.span())).collect()),
        Item::Value(Value::Array(a)) => {
            let mut v: Vec<Located> = Vec::new();
            for (i, item) in a.iter().enumerate() {
                match item {
                    Value::InlineTable(t) => v.push((t as &dyn TableLike, t.span())),
                    other => {
                        return Err(w.error(
                            other.span(),
                            Some(format!("{label}[{i}]")),
                            format!(
                                "expected a table for each {what}, found {}",
                                found_value(other)
                            ),
                            hint,
                        ))
                    }
                }
            }
            Ok(v)
        }
        other => Err(w.bad(
            e,
            format!(
                "expected an array of tables [[{}]], found {}",
                header(&label),
                found(other)
            ),
            hint,
        )),
    }
}

/// `story[2].criteria` → `story.criteria`: how the header is written in the file.
fn header(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

pub(super) fn text(w: &Walker, e: &Entry, example: &str) -> Result<String> {
    w.nonempty_string(e, example, "write some text, or remove the key")
}

/// An unknown key: the nearest valid key, or the table it belongs in.
pub(super) fn unknown(w: &Walker, e: &Entry, place: &str, valid: &[&str]) -> ConfigError {
    let name = e.name;
    let list = valid.join(", ");
    let home = if AGENT_KEYS.contains(&name) || LIMIT_KEYS.contains(&name) {
        Some(if e.section.is_some_and(|s| s.starts_with("story")) {
            if AGENT_KEYS.contains(&name) {
                "[story.agent]"
            } else {
                "[story.budget]"
            }
        } else {
            "[defaults] (or a story's [story.agent] / [story.budget])"
        })
    } else {
        None
    };
    let hint = match (suggest(name, valid), home) {
        (Some(s), _) => format!("did you mean `{s}`? valid keys: {list}"),
        (None, Some(h)) => format!("`{name}` belongs in {h}; valid keys here: {list}"),
        (None, None) => format!("valid keys: {list}"),
    };
    w.error(
        e.key_span.clone(),
        Some(e.path()),
        format!("unknown key `{name}` {place}"),
        hint,
    )
}

/// `[defaults]` (agent keys and limits), `[story.agent]` (agent keys) or `[story.budget]`
/// (limits). `label` is `None` for the story tables, whose label is derived from the path.
fn overrides_table(w: &mut Walker, e: &Entry, label: Option<&str>) -> Result<StoryOverrides> {
    let path = e.path();
    let Some(table) = e.item.as_table_like() else {
        return Err(w.bad(
            e,
            format!("expected a table, found {}", found(e.item)),
            format!(
                "write [{}] on a line of its own and put its keys below it",
                header(&path)
            ),
        ));
    };
    let (allowed, place): (Vec<&str>, String) = match (label, e.name) {
        (Some(l), _) => (defaults_keys(), format!("in {l}")),
        (None, "agent") => (AGENT_KEYS.to_vec(), "in [story.agent]".into()),
        (None, _) => (LIMIT_KEYS.to_vec(), "in [story.budget]".into()),
    };
    let all = entries(&path, table);
    let mut out = StoryOverrides::default();
    for k in &all {
        w.record(k);
        if !allowed.contains(&k.name) {
            return Err(unknown(w, k, &place, &allowed));
        }
        match k.name {
            "max_iterations" => out.max_iterations = Some(w.max_iterations(k)?),
            "max_runtime" => out.max_runtime = Some(w.max_runtime(k)?),
            "max_cost_usd" => out.max_cost_usd = Some(w.usd(k)?),
            "max_tokens" => out.max_tokens = Some(w.max_tokens(k)?),
            _ => {}
        }
    }
    let agent: Vec<Entry> = all
        .into_iter()
        .filter(|k| AGENT_KEYS.contains(&k.name))
        .collect();
    out.agent = w.agent_entries(&agent)?;
    Ok(out)
}

fn story(
    w: &mut Walker,
    i: usize,
    table: &dyn TableLike,
    span: Option<Range<usize>>,
) -> Result<(Story, StoryOverrides, StorySpans)> {
    let section = format!("story[{i}]");
    let mut s = Story {
        id: String::new(),
        title: String::new(),
        layer: Layer::other(),
        depends_on: Vec::new(),
        affected_paths: Vec::new(),
        description: String::new(),
        criteria: Vec::new(),
        complexity: None,
    };
    let (mut id, mut title, mut description) = (None, None, None);
    let mut o = StoryOverrides::default();
    let mut spans = StorySpans::default();
    for e in &entries(&section, table) {
        w.record(e);
        match e.name {
            "id" => {
                id = Some(checks::id(w, e, "STORY-001")?);
                spans.id = e.span();
            }
            "title" => title = Some(text(w, e, "Provenance table and migration")?),
            "description" => description = Some(text(w, e, "What to build.")?),
            // Which layers are allowed depends on `architecture`, which may come later in
            // the file: checked after the walk (`layers.rs`).
            "layer" => {
                s.layer = Layer::new(checks::id(w, e, "data")?);
                spans.layer = e.span();
            }
            "depends_on" => {
                s.depends_on = w.strings(e, &["STORY-001"])?;
                spans.deps = item_spans(e, s.depends_on.len());
            }
            "affected_paths" => s.affected_paths = w.strings(e, &["src/db/**"])?,
            "complexity" => {
                s.complexity = Some(w.choice(e, keys::COMPLEXITIES, "medium")?.to_string())
            }
            "criteria" => s.criteria = checks::criteria(w, e)?,
            "agent" | "budget" => {
                let more = overrides_table(w, e, None)?;
                merge(&mut o, more);
            }
            _ => return Err(unknown(w, e, "in [[story]]", &names(keys::STORY))),
        }
    }
    let need = |key: &str, hint: &str| {
        w.error(
            span.clone(),
            Some(format!("{section}.{key}")),
            format!("the story has no `{key}`"),
            hint,
        )
    };
    s.id = id.ok_or_else(|| need("id", "add id = \"STORY-001\" ([A-Za-z0-9_-]+, unique)"))?;
    s.title = title.ok_or_else(|| need("title", "add title = \"…\", one line"))?;
    s.description = description.ok_or_else(|| {
        need(
            "description",
            "add description = \"\"\"…\"\"\": what to build",
        )
    })?;
    Ok((s, o, spans))
}

/// `[story.agent]` and `[story.budget]` set disjoint keys, so merging cannot conflict.
fn merge(into: &mut StoryOverrides, more: StoryOverrides) {
    if more.agent != crate::config::AgentConf::default() {
        into.agent = more.agent;
    }
    into.max_iterations = more.max_iterations.or(into.max_iterations);
    into.max_runtime = more.max_runtime.or(into.max_runtime);
    into.max_cost_usd = more.max_cost_usd.or(into.max_cost_usd);
    into.max_tokens = more.max_tokens.or(into.max_tokens);
}

fn item_spans(e: &Entry, n: usize) -> Vec<Option<Range<usize>>> {
    match e.item.as_value() {
        Some(Value::Array(a)) => a.iter().map(Value::span).collect(),
        _ => vec![e.span(); n],
    }
}

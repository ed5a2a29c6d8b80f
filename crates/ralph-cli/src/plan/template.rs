//! Architecture templates: the built-in ones (data in the binary, `templates/*.toml`) and a
//! project's own (`.ralph/templates/<name>.toml`, which wins over a built-in of the same name),
//! parsed with located errors like every other file of ralph's.

#![expect(
    clippy::result_large_err,
    reason = "ConfigError's public shape is the CLI contract; an error ends the parse"
)]

use std::path::{Path, PathBuf};

use ralph_stories::{Template, TemplateLayer};
use toml_edit::ImDocument;

use super::walk::{tables, text, unknown};
use crate::config::text::quote;
use crate::config::validate::{entries, Entry, Result, Walker};
use crate::config::ConfigError;

/// The built-in templates, by name, in the order `ralph templates list` shows them.
pub const BUILTIN: &[(&str, &str)] = &[
    ("layered-4", include_str!("../../templates/layered-4.toml")),
    (
        "microservices",
        include_str!("../../templates/microservices.toml"),
    ),
    (
        "serverless",
        include_str!("../../templates/serverless.toml"),
    ),
    (
        "event-driven",
        include_str!("../../templates/event-driven.toml"),
    ),
];

/// Where a project's templates live, relative to the project root.
pub const PROJECT_DIR: &str = ".ralph/templates";

const TOP: &[&str] = &["name", "description", "layer"];
const LAYER: &[&str] = &["name", "description", "conventions", "depends_on", "gates"];

/// Where a template came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Builtin,
    Project(PathBuf),
}

impl Source {
    pub fn label(&self) -> String {
        match self {
            Source::Builtin => "built-in".into(),
            Source::Project(p) => p.display().to_string(),
        }
    }
}

/// The template called `name`: the project's (`root/.ralph/templates/<name>.toml`) if there is
/// one, else the built-in one; `None` when neither exists. A malformed project template is an
/// error, never skipped in favour of the built-in.
pub fn find(root: &Path, name: &str) -> Result<Option<(Template, Source)>> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        let rel = Path::new(PROJECT_DIR).join(format!("{name}.toml"));
        let path = root.join(&rel);
        if path.is_file() {
            let src = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                file: rel.clone(),
                line: None,
                column: None,
                key: None,
                message: format!("cannot read the template: {e}"),
                hint: Some("check the file's permissions".into()),
            })?;
            return Ok(Some((parse(&src, &rel, Some(name))?, Source::Project(rel))));
        }
    }
    match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((n, src)) => {
            let path = PathBuf::from(format!("<built-in>/{n}.toml"));
            Ok(Some((parse(src, &path, Some(n))?, Source::Builtin)))
        }
        None => Ok(None),
    }
}

/// Every template's name and source: the project's, then the built-ins it does not replace.
pub fn list(root: &Path) -> Vec<(String, Source)> {
    let mut out: Vec<(String, Source)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir(root.join(PROJECT_DIR)) {
        let mut names: Vec<String> = dir
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".toml").map(str::to_string)
            })
            .collect();
        names.sort();
        for n in names {
            let rel = Path::new(PROJECT_DIR).join(format!("{n}.toml"));
            out.push((n, Source::Project(rel)));
        }
    }
    for (n, _) in BUILTIN {
        if !out.iter().any(|(o, _)| o == n) {
            out.push((n.to_string(), Source::Builtin));
        }
    }
    out
}

/// The names a plan's `architecture` may take, for hints.
pub fn names(root: &Path) -> Vec<String> {
    list(root).into_iter().map(|(n, _)| n).collect()
}

/// The message and hint for `name` naming no template: the nearest name, or every one and
/// where a project's own go. One wording for `ralph templates show`, `ralph plan` and a plan's
/// `architecture`.
pub fn unknown_template(root: &Path, name: &str) -> (String, String) {
    let names = names(root);
    let list: Vec<&str> = names.iter().map(String::as_str).collect();
    let hint = match crate::config::text::suggest(name, &list) {
        Some(s) => format!("did you mean {}? templates: {}", quote(s), names.join(", ")),
        None => format!(
            "templates: {} (`ralph templates list`; a project's own go in {PROJECT_DIR}/<name>.toml)",
            names.join(", ")
        ),
    };
    (
        format!("there is no architecture template {}", quote(name)),
        hint,
    )
}

/// Parse a template file. `expected`: the name its file is known by, which `name` must equal.
pub fn parse(src: &str, file: &Path, expected: Option<&str>) -> Result<Template> {
    let doc = ImDocument::parse(src).map_err(|e| crate::config::syntax::error(src, file, &e))?;
    let mut w = Walker::new(src, file);
    let root = doc.as_table();
    let mut t = Template {
        name: String::new(),
        description: String::new(),
        layers: Vec::new(),
    };
    let mut layer_spans = Vec::new();
    for (key, item) in root.iter() {
        let e = Entry {
            section: None,
            name: key,
            item,
            key_span: root.key(key).and_then(|k| k.span()),
        };
        w.record(&e);
        match key {
            "name" => {
                t.name = super::checks::id(&w, &e, "my-architecture")?;
                if let Some(x) = expected.filter(|x| *x != t.name) {
                    return Err(w.bad(
                        &e,
                        format!(
                            "the template is named {} but its file is {x}.toml",
                            quote(&t.name)
                        ),
                        format!("write name = {}, or rename the file", quote(x)),
                    ));
                }
            }
            "description" => t.description = text(&w, &e, "what kind of codebase")?,
            "layer" => {
                for (i, (table, span)) in tables(&w, &e, "layer")?.into_iter().enumerate() {
                    let (l, spans) = layer(&mut w, i, table, span)?;
                    if t.layers.iter().any(|o| o.name == l.name) {
                        return Err(w.error(
                            spans.name,
                            Some(format!("layer[{i}].name")),
                            format!("layer {} is defined twice", quote(&l.name)),
                            "give each layer its own name",
                        ));
                    }
                    t.layers.push(l);
                    layer_spans.push(spans);
                }
            }
            _ => return Err(unknown(&w, &e, "at the top level of a template", TOP)),
        }
    }
    let missing = |key: &str, hint: &str| ConfigError {
        file: file.to_path_buf(),
        line: Some(1),
        column: Some(1),
        key: Some(key.to_string()),
        message: format!("the template has no `{key}`"),
        hint: Some(hint.to_string()),
    };
    if t.name.is_empty() {
        return Err(missing("name", "add name = \"my-architecture\""));
    }
    if t.layers.is_empty() {
        return Err(missing(
            "layer",
            "add at least one [[layer]] with name and description",
        ));
    }
    check_edges(&w, &t, &layer_spans)?;
    Ok(t)
}

#[derive(Default)]
struct LayerSpans {
    name: Option<std::ops::Range<usize>>,
    deps: Vec<Option<std::ops::Range<usize>>>,
}

fn layer(
    w: &mut Walker,
    i: usize,
    table: &dyn toml_edit::TableLike,
    span: Option<std::ops::Range<usize>>,
) -> Result<(TemplateLayer, LayerSpans)> {
    let section = format!("layer[{i}]");
    let mut l = TemplateLayer {
        name: String::new(),
        description: String::new(),
        conventions: String::new(),
        depends_on: Vec::new(),
        gates: Vec::new(),
    };
    let mut spans = LayerSpans::default();
    for e in &entries(&section, table) {
        w.record(e);
        match e.name {
            "name" => {
                l.name = super::checks::id(w, e, "data")?;
                spans.name = e.span();
            }
            "description" => l.description = text(w, e, "what belongs in the layer")?,
            "conventions" => l.conventions = text(w, e, "how its code is written")?,
            "depends_on" => {
                l.depends_on = w.strings(e, &["data"])?;
                spans.deps = match e.item.as_value() {
                    Some(toml_edit::Value::Array(a)) => a.iter().map(|v| v.span()).collect(),
                    _ => vec![e.span(); l.depends_on.len()],
                };
            }
            "gates" => l.gates = w.strings(e, &["unit tests cover each rule"])?,
            _ => return Err(unknown(w, e, "in [[layer]]", LAYER)),
        }
    }
    if l.name.is_empty() {
        return Err(w.error(
            span,
            Some(format!("{section}.name")),
            "the layer has no `name`",
            "add name = \"data\" (letters, digits, `_` and `-`)",
        ));
    }
    if l.description.is_empty() {
        return Err(w.error(
            span,
            Some(format!("{section}.description")),
            "the layer has no `description`",
            "add description = \"…\": what belongs in it, one line",
        ));
    }
    Ok((l, spans))
}

/// Every `depends_on` names another layer of the template, and the layers form no cycle.
fn check_edges(w: &Walker, t: &Template, spans: &[LayerSpans]) -> Result<()> {
    let names = t.layer_names();
    for (i, l) in t.layers.iter().enumerate() {
        for (n, d) in l.depends_on.iter().enumerate() {
            let at = spans[i].deps.get(n).cloned().flatten();
            let key = Some(format!("layer[{i}].depends_on[{n}]"));
            if *d == l.name {
                return Err(w.error(
                    at,
                    key,
                    format!("layer {} depends on itself", quote(d)),
                    "remove it from its own depends_on",
                ));
            }
            if !names.contains(&d.as_str()) {
                return Err(w.error(
                    at,
                    key,
                    format!(
                        "layer {} depends on {}, which is not a layer of the template",
                        quote(&l.name),
                        quote(d)
                    ),
                    format!("the template's layers: {}", names.join(", ")),
                ));
            }
        }
    }
    if let Some(cycle) = cycle(t) {
        let i = t
            .layers
            .iter()
            .position(|l| l.name == cycle[0])
            .unwrap_or(0);
        return Err(w.error(
            spans[i].name.clone(),
            Some(format!("layer[{i}].depends_on")),
            format!(
                "the layers depend on each other in a cycle: {}",
                cycle.join(" → ")
            ),
            "a layer builds only on layers below it: remove one of these edges",
        ));
    }
    Ok(())
}

/// A cycle among the layers, as names from its first layer back to it.
fn cycle(t: &Template) -> Option<Vec<String>> {
    fn visit<'a>(
        t: &'a Template,
        at: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(p) = path.iter().position(|n| *n == at) {
            let mut c: Vec<String> = path[p..].iter().map(|s| s.to_string()).collect();
            c.push(at.to_string());
            return Some(c);
        }
        if done.contains(&at) {
            return None;
        }
        path.push(at);
        for d in t.layer(at).map(|l| l.depends_on.as_slice()).unwrap_or(&[]) {
            if let Some(c) = visit(t, d, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.push(at);
        None
    }
    let mut done = Vec::new();
    for l in &t.layers {
        if let Some(c) = visit(t, &l.name, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(name: &str) -> Template {
        let (t, src) = find(Path::new("/nonexistent"), name).unwrap().unwrap();
        assert_eq!(src, Source::Builtin);
        t
    }

    #[test]
    fn every_builtin_template_parses_and_names_itself() {
        for (name, _) in BUILTIN {
            assert_eq!(builtin(name).name, *name);
        }
    }

    /// Each built-in template's claims (its description's arrow chain) are what its layers
    /// and edges give.
    #[test]
    fn each_builtin_template_has_the_order_and_edges_it_claims() {
        type Claim<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);
        let claims: &[Claim] = &[
            (
                "layered-4",
                &["data", "service", "api", "ui"],
                &[("service", "data"), ("api", "service"), ("ui", "api")],
            ),
            (
                "microservices",
                &["contracts", "data", "service", "gateway", "infra"],
                &[
                    ("data", "contracts"),
                    ("service", "contracts"),
                    ("service", "data"),
                    ("gateway", "service"),
                    ("infra", "gateway"),
                ],
            ),
            (
                "serverless",
                &["storage", "functions", "api", "events"],
                &[
                    ("functions", "storage"),
                    ("api", "functions"),
                    ("events", "functions"),
                ],
            ),
            (
                "event-driven",
                &["events", "bus", "handlers", "projections", "api"],
                &[
                    ("bus", "events"),
                    ("handlers", "bus"),
                    ("projections", "handlers"),
                    ("api", "projections"),
                ],
            ),
        ];
        assert_eq!(claims.len(), BUILTIN.len());
        for (name, order, edges) in claims {
            let t = builtin(name);
            assert_eq!(t.order(), *order, "{name}");
            assert_eq!(t.edges(), *edges, "{name}");
            assert!(
                t.description.contains(&order.join(" → ")),
                "{name}: {}",
                t.description
            );
            assert!(t
                .layers
                .iter()
                .all(|l| !l.conventions.is_empty() && !l.gates.is_empty()));
        }
    }

    fn err(src: &str) -> String {
        parse(src, Path::new("t.toml"), None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_cycle_of_layers_is_named() {
        let e = err("name = \"t\"\ndescription = \"d\"\n[[layer]]\nname = \"a\"\ndescription = \"x\"\ndepends_on = [\"b\"]\n[[layer]]\nname = \"b\"\ndescription = \"y\"\ndepends_on = [\"a\"]\n");
        assert!(e.contains("a → b → a"), "{e}");
        assert!(e.contains("t.toml:4"), "{e}");
    }

    #[test]
    fn an_unknown_layer_dependency_is_located_with_the_layers_named() {
        let e = err("name = \"t\"\ndescription = \"d\"\n[[layer]]\nname = \"a\"\ndescription = \"x\"\ndepends_on = [\"zz\"]\n");
        assert!(e.contains("t.toml:6:15"), "{e}");
        assert!(e.contains("the template's layers: a"), "{e}");
    }
}

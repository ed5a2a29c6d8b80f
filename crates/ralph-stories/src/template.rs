//! Architecture templates (`ralph templates`): the layers of a kind of codebase, their order,
//! which layers build on which (the default edges between their stories), and what a story of
//! each layer should follow and prove. The planner is given one; a plan that names it
//! (`architecture = "…"`) may use only its layers. Parsed by ralph-cli (built-in ones are data
//! in the binary, a project's own in `.ralph/templates/<name>.toml`); what reaches this crate
//! is valid: unique layer names, every `depends_on` another layer of the template, no cycle.

use std::collections::BTreeSet;

use crate::plan::Plan;

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    /// One line.
    pub description: String,
    /// In the file's order, which is also the order they are built in where `depends_on`
    /// leaves a choice.
    pub layers: Vec<TemplateLayer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateLayer {
    pub name: String,
    /// What belongs in it, one line.
    pub description: String,
    /// How its code is written here: given to the planner for every story of the layer.
    pub conventions: String,
    /// The layers its stories build on: a story of this layer that names no dependency gets
    /// every story of these layers as one (its default edges).
    pub depends_on: Vec<String>,
    /// What every story of the layer must prove, as `auto` criteria the planner writes.
    pub gates: Vec<String>,
}

impl Template {
    pub fn layer(&self, name: &str) -> Option<&TemplateLayer> {
        self.layers.iter().find(|l| l.name == name)
    }

    pub fn layer_names(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.name.as_str()).collect()
    }

    /// The layers in build order: each after every layer it depends on, the file's order
    /// where that leaves a choice. A cycle cannot reach here (the parser refuses it); were one
    /// there, its layers would come last, in file order.
    pub fn order(&self) -> Vec<&str> {
        let mut done: Vec<&str> = Vec::with_capacity(self.layers.len());
        while done.len() < self.layers.len() {
            let next = self.layers.iter().find(|l| {
                !done.contains(&l.name.as_str())
                    && l.depends_on.iter().all(|d| done.contains(&d.as_str()))
            });
            match next {
                Some(l) => done.push(&l.name),
                None => {
                    for l in &self.layers {
                        if !done.contains(&l.name.as_str()) {
                            done.push(&l.name);
                        }
                    }
                }
            }
        }
        done
    }

    /// The edges between layers, `(layer, the layer it builds on)`, in file order.
    pub fn edges(&self) -> Vec<(&str, &str)> {
        self.layers
            .iter()
            .flat_map(|l| l.depends_on.iter().map(|d| (l.name.as_str(), d.as_str())))
            .collect()
    }

    /// The default edges for `plan`: `(story, dependency)` for every story that names no
    /// dependency, on every story of the layers its layer builds on (directly; the layers
    /// below those are reached through them). A layer's first stories, and stories of layers
    /// the template does not have, get none.
    pub fn default_edges(&self, plan: &Plan) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for s in plan.stories.iter().filter(|s| s.depends_on.is_empty()) {
            let Some(layer) = self.layer(s.layer.as_str()) else {
                continue;
            };
            let below: BTreeSet<&str> = layer.depends_on.iter().map(String::as_str).collect();
            for d in plan
                .stories
                .iter()
                .filter(|d| d.id != s.id && below.contains(d.layer.as_str()))
            {
                out.push((s.id.clone(), d.id.clone()));
            }
        }
        out
    }

    /// The template as the planner reads it: layers in build order, each with what it builds
    /// on, its conventions and what its stories must prove.
    pub fn describe(&self) -> String {
        let mut t = format!("Architecture `{}`: {}\n", self.name, self.description);
        t.push_str(&format!(
            "Layers, in build order: {}.\n",
            self.order().join(" → ")
        ));
        for name in self.order() {
            let Some(l) = self.layer(name) else { continue };
            t.push_str(&format!("\n- `{}`: {}\n", l.name, l.description));
            if !l.depends_on.is_empty() {
                t.push_str(&format!("  builds on: {}\n", l.depends_on.join(", ")));
            }
            if !l.conventions.is_empty() {
                t.push_str(&format!("  conventions: {}\n", l.conventions));
            }
            for g in &l.gates {
                t.push_str(&format!("  must prove: {g}\n"));
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    fn layer(name: &str, deps: &[&str]) -> TemplateLayer {
        TemplateLayer {
            name: name.into(),
            description: format!("the {name} layer"),
            conventions: String::new(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            gates: vec![],
        }
    }

    fn four() -> Template {
        Template {
            name: "t".into(),
            description: "four".into(),
            // Out of build order in the file on purpose.
            layers: vec![
                layer("ui", &["api"]),
                layer("data", &[]),
                layer("api", &["service"]),
                layer("service", &["data"]),
            ],
        }
    }

    #[test]
    fn layers_come_after_what_they_build_on() {
        assert_eq!(four().order(), ["data", "service", "api", "ui"]);
    }

    #[test]
    fn a_story_without_dependencies_gets_the_stories_of_the_layers_below() {
        let s = |id: &str, l: &str, deps: &[&str]| {
            let mut st = sample::story(id, deps, &[]);
            st.layer = crate::Layer::new(l);
            st
        };
        let plan = sample::plan(
            "p",
            vec![
                s("D1", "data", &[]),
                s("D2", "data", &[]),
                s("S1", "service", &[]),
                s("S2", "service", &["D1"]),
                s("A1", "api", &[]),
                s("X", "other", &[]),
            ],
        );
        assert_eq!(
            four().default_edges(&plan),
            [
                ("S1".to_string(), "D1".to_string()),
                ("S1".into(), "D2".into()),
                ("A1".into(), "S1".into()),
                ("A1".into(), "S2".into()),
            ]
        );
    }
}

//! `[layers.<name>]`: what every story of a layer runs with (`ralph stories run`): an
//! instructions file added to its prompt, a backend and model, and gates of its own that must
//! pass when it claims completion. A story's own `[story.agent]` still wins.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ralph_core::settings::GateWhen;
use toml_edit::TableLike;

use super::{entries, Result, Walker};
use crate::config::text::{found, quote, suggest};
use crate::config::LayerConf;

impl Walker<'_> {
    pub(crate) fn layers(&mut self, table: &dyn TableLike) -> Result<BTreeMap<String, LayerConf>> {
        let mut out = BTreeMap::new();
        let names: Vec<(String, String)> = table
            .iter()
            .map(|(layer, _)| (layer.to_string(), format!("layers.{layer}")))
            .collect();
        for ((layer, path), e) in names.iter().zip(entries("layers", table)) {
            self.record(&e);
            let ok = !layer.is_empty()
                && layer
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(self.error(
                    e.key_span.clone(),
                    Some(e.path()),
                    format!("{} cannot be a layer name", quote(layer)),
                    "a layer is named like a template's layers: letters, digits, `_` and `-`",
                ));
            }
            let Some(inner) = e.item.as_table_like() else {
                return Err(self.bad(
                    &e,
                    format!("expected a table [{path}], found {}", found(e.item)),
                    format!("write [{path}] on a line of its own and put its keys below it"),
                ));
            };
            let mut conf = LayerConf::default();
            for k in &entries(path, inner) {
                self.record(k);
                match k.name {
                    "instructions" => {
                        let s = self.nonempty_string(
                            k,
                            "docs/agents/data.md",
                            "name a Markdown file, relative to the project root",
                        )?;
                        // Whether it is there is checked when the stories mode reads the
                        // config for a plan (`ConfigFile::check_layer_files`).
                        conf.instructions = Some(PathBuf::from(s));
                    }
                    "backend" => conf.backend = Some(self.backend(k)?.to_string()),
                    "model" => {
                        conf.model = Some(
                            self.nonempty_string(
                                k,
                                "claude-sonnet-4-5",
                                "name a model, or remove the key",
                            )?
                            .to_string(),
                        )
                    }
                    "gates" => {
                        let gates = self.gates(k)?;
                        if let Some(g) = gates
                            .iter()
                            .find(|g| !matches!(g.when, GateWhen::Complete | GateWhen::PostStory))
                        {
                            return Err(self.bad(
                                k,
                                format!(
                                    "gate {} of layer {}: a layer's gates run when its story claims completion",
                                    quote(&g.name),
                                    quote(layer)
                                ),
                                "remove `when` (or write when = \"post-story\"); pre-merge and pre-story gates go in [[gates]]",
                            ));
                        }
                        conf.gates = gates;
                    }
                    _ => {
                        let valid = super::LAYER_KEYS.join(", ");
                        let hint = match suggest(k.name, super::LAYER_KEYS) {
                            Some(x) => format!("did you mean `{x}`? valid keys: {valid}"),
                            None => format!("valid keys: {valid}"),
                        };
                        return Err(self.error(
                            k.key_span.clone(),
                            Some(k.path()),
                            format!("unknown key `{}` in [{path}]", k.name),
                            hint,
                        ));
                    }
                }
            }
            out.insert(layer.clone(), conf);
        }
        Ok(out)
    }
}

//! `[routing]`: which model tier a call runs on, by the story's layer, its complexity and the
//! call's kind, and when a story's loop moves up a tier (the same failure for
//! `plateau_iterations` iterations).

use toml_edit::TableLike;

use super::{entries, Entry, IntRule, Result, Walker};
use crate::config::text::{quote, suggest};
use crate::config::{RoutingConf, RuleConf, TierConf};

const TIER_KEYS: &[&str] = &["name", "models"];
const RULE_KEYS: &[&str] = &["layer", "complexity", "kind", "tier"];
pub(crate) const COMPLEXITIES: &[&str] = &["low", "medium", "high"];
/// The calls routing applies to.
pub(crate) const CALL_KINDS: &[&str] = &["implementation", "repair", "planning"];

impl Walker<'_> {
    pub(crate) fn routing(&mut self, table: &dyn TableLike) -> Result<RoutingConf> {
        let mut conf = RoutingConf::default();
        let mut default_tier: Option<(String, Option<std::ops::Range<usize>>)> = None;
        let mut rule_tiers = Vec::new();
        let all = entries("routing", table);
        for e in &all {
            self.record(e);
            match e.name {
                "plateau_iterations" => {
                    let n = self.whole(
                        e,
                        IntRule {
                            min: 1,
                            max: 1000,
                            example: 2,
                            below_min_hint: "at least one iteration must fail the same way",
                        },
                    )?;
                    conf.plateau_iterations = Some(u32::try_from(n).unwrap_or(2));
                }
                "default_tier" => {
                    let t =
                        self.nonempty_string(e, "standard", "name one of the [[routing.tier]]s")?;
                    default_tier = Some((t.to_string(), e.span()));
                }
                "tier" => {
                    for (i, (t, span)) in crate::plan::walk::tables(self, e, "tier")?
                        .into_iter()
                        .enumerate()
                    {
                        let section = format!("routing.tier[{i}]");
                        let tier = self.tier(&section, t, span)?;
                        if conf.tiers.iter().any(|o| o.name == tier.name) {
                            return Err(self.error(
                                e.key_span.clone(),
                                Some(format!("{section}.name")),
                                format!("tier {} is defined twice", quote(&tier.name)),
                                "give each tier its own name",
                            ));
                        }
                        conf.tiers.push(tier);
                    }
                }
                "rule" => {
                    for (i, (t, span)) in crate::plan::walk::tables(self, e, "rule")?
                        .into_iter()
                        .enumerate()
                    {
                        let section = format!("routing.rule[{i}]");
                        let (rule, at) = self.rule(&section, t, span)?;
                        rule_tiers.push((rule.tier.clone(), at, section));
                        conf.rules.push(rule);
                    }
                }
                _ => return Err(self.unknown_key(e, "routing")),
            }
        }
        let names: Vec<&str> = conf.tiers.iter().map(|t| t.name.as_str()).collect();
        let unknown = |w: &Walker, name: &str, span, key: String| {
            let hint = match suggest(name, &names) {
                Some(s) => format!("did you mean {}? tiers: {}", quote(s), names.join(", ")),
                None if names.is_empty() => {
                    "define it first: [[routing.tier]] with name and models".to_string()
                }
                None => format!("tiers: {}", names.join(", ")),
            };
            w.error(
                span,
                Some(key),
                format!("there is no tier {}", quote(name)),
                hint,
            )
        };
        for (tier, at, section) in &rule_tiers {
            if !names.contains(&tier.as_str()) {
                return Err(unknown(self, tier, at.clone(), format!("{section}.tier")));
            }
        }
        if let Some((t, at)) = default_tier {
            if !names.contains(&t.as_str()) {
                return Err(unknown(self, &t, at, "routing.default_tier".into()));
            }
            conf.default_tier = Some(t);
        }
        Ok(conf)
    }

    fn tier(
        &mut self,
        section: &str,
        table: &dyn TableLike,
        span: Option<std::ops::Range<usize>>,
    ) -> Result<TierConf> {
        let mut tier = TierConf::default();
        for k in &entries(section, table) {
            self.record(k);
            match k.name {
                "name" => {
                    tier.name = self
                        .nonempty_string(k, "standard", "name the tier")?
                        .to_string()
                }
                "models" => tier.models = self.backend_list_with_models(k)?,
                _ => return Err(self.unknown_in(k, section, TIER_KEYS)),
            }
        }
        if tier.name.is_empty() || tier.models.is_empty() {
            let key = if tier.name.is_empty() {
                "name"
            } else {
                "models"
            };
            return Err(self.error(
                span,
                Some(format!("{section}.{key}")),
                format!("the tier has no `{key}`"),
                "a tier has name = \"…\" and models = [\"backend:model\", …] (the first in use, \
                 the rest its fallbacks)",
            ));
        }
        Ok(tier)
    }

    fn rule(
        &mut self,
        section: &str,
        table: &dyn TableLike,
        span: Option<std::ops::Range<usize>>,
    ) -> Result<(RuleConf, Option<std::ops::Range<usize>>)> {
        let mut rule = RuleConf::default();
        let mut tier_at = span.clone();
        for k in &entries(section, table) {
            self.record(k);
            match k.name {
                "layer" => {
                    rule.layer = Some(self.nonempty_string(k, "data", "a layer name")?.to_string())
                }
                "complexity" => {
                    rule.complexity = Some(self.choice(k, COMPLEXITIES, "low")?.to_string())
                }
                "kind" => {
                    rule.kind = Some(self.choice(k, CALL_KINDS, "implementation")?.to_string())
                }
                "tier" => {
                    rule.tier = self
                        .nonempty_string(k, "cheap", "name a [[routing.tier]]")?
                        .to_string();
                    tier_at = k.span();
                }
                _ => return Err(self.unknown_in(k, section, RULE_KEYS)),
            }
        }
        if rule.tier.is_empty() {
            return Err(self.error(
                span,
                Some(format!("{section}.tier")),
                "the rule has no `tier`",
                "add tier = \"…\": the tier its calls run on",
            ));
        }
        Ok((rule, tier_at))
    }

    fn unknown_in(&self, k: &Entry, section: &str, valid: &[&str]) -> crate::config::ConfigError {
        let list = valid.join(", ");
        let hint = match suggest(k.name, valid) {
            Some(s) => format!("did you mean `{s}`? valid keys: {list}"),
            None => format!("valid keys: {list}"),
        };
        let header = section.split('[').next().unwrap_or(section);
        self.error(
            k.key_span.clone(),
            Some(k.path()),
            format!("unknown key `{}` in [[{header}]]", k.name),
            hint,
        )
    }
}

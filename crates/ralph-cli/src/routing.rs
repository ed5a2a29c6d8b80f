//! `[routing]` applied: the tier a call runs on (the first rule whose layer, complexity and
//! kind all match, else `routing.default_tier`), that tier's models made the config's agent
//! and fallbacks, and the tiers above it, in order, for escalation.

use crate::config::{ConfigFile, RoutingConf};

/// The plateau length when `routing.plateau_iterations` is not set.
pub const DEFAULT_PLATEAU: u32 = 2;

/// What is being routed.
pub struct Call<'a> {
    pub layer: Option<&'a str>,
    pub complexity: Option<&'a str>,
    /// `implementation`, `repair`, `planning`.
    pub kind: &'a str,
}

/// The index of the tier `call` runs on; `None`: no routing (the configured agent).
pub fn tier_for(r: &RoutingConf, call: &Call) -> Option<usize> {
    let matches =
        |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| Some(w) == have);
    let name = r
        .rules
        .iter()
        .find(|rule| {
            matches(&rule.layer, call.layer)
                && matches(&rule.complexity, call.complexity)
                && matches(&rule.kind, Some(call.kind))
        })
        .map(|rule| rule.tier.as_str())
        .or(r.default_tier.as_deref())?;
    r.tiers.iter().position(|t| t.name == name)
}

/// `cfg` with tier `i`'s models as its agent (the first) and fallbacks (the rest), switched
/// as [`crate::config::AgentConf::switch_backend`] says.
pub fn apply_tier(cfg: &mut ConfigFile, i: usize) {
    let Some(tier) = cfg.routing.tiers.get(i).cloned() else {
        return;
    };
    let Some((first, rest)) = tier.models.split_first() else {
        return;
    };
    let (backend, model) = match first.split_once(':') {
        Some((b, m)) => (b, Some(m.to_string())),
        None => (first.as_str(), None),
    };
    cfg.agent.switch_backend(backend, None);
    // The tier's model, or none: the backend's own (never the model asked of another tier).
    cfg.agent.model = model;
    cfg.agent.fallback = Some(rest.to_vec());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RuleConf, TierConf};

    fn conf() -> RoutingConf {
        let tier = |n: &str| TierConf {
            name: n.into(),
            models: vec![format!("claude:{n}")],
        };
        let rule =
            |layer: Option<&str>, complexity: Option<&str>, kind: Option<&str>, t: &str| RuleConf {
                layer: layer.map(Into::into),
                complexity: complexity.map(Into::into),
                kind: kind.map(Into::into),
                tier: t.into(),
            };
        RoutingConf {
            plateau_iterations: None,
            default_tier: Some("standard".into()),
            tiers: vec![tier("cheap"), tier("standard"), tier("strong")],
            rules: vec![
                rule(None, None, Some("planning"), "strong"),
                rule(Some("docs"), None, None, "cheap"),
                rule(None, Some("low"), Some("implementation"), "cheap"),
            ],
        }
    }

    #[test]
    fn the_first_matching_rule_gives_the_tier_and_the_default_the_rest() {
        let r = conf();
        let call = |layer, complexity, kind| {
            tier_for(
                &r,
                &Call {
                    layer,
                    complexity,
                    kind,
                },
            )
        };
        assert_eq!(call(Some("docs"), Some("high"), "implementation"), Some(0));
        assert_eq!(call(Some("data"), Some("low"), "implementation"), Some(0));
        assert_eq!(call(Some("data"), Some("low"), "repair"), Some(1));
        assert_eq!(call(None, None, "planning"), Some(2));
        let none = RoutingConf {
            default_tier: None,
            ..conf()
        };
        assert_eq!(
            tier_for(
                &none,
                &Call {
                    layer: Some("data"),
                    complexity: Some("high"),
                    kind: "implementation"
                }
            ),
            None
        );
    }
}

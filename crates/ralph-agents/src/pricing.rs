//! Model prices, for agents that report tokens but no cost.
//!
//! The built-in table is data (`prices.toml`, embedded at build time); `ralph.toml`'s
//! `[pricing."model"]` tables are layered on top with [`PriceTable::insert`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::event::Tokens;

/// USD per million tokens, per token kind (see CLI.md "Token kinds").
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
    /// The model's context length in tokens, where known.
    #[serde(default)]
    pub context_window: Option<u64>,
}

impl Price {
    /// The cost of `usage` at this price, in USD.
    pub fn cost(&self, usage: &Tokens) -> f64 {
        (usage.input as f64 * self.input
            + usage.output as f64 * self.output
            + usage.cache_read as f64 * self.cache_read
            + usage.cache_write as f64 * self.cache_write)
            / 1_000_000.0
    }
}

/// The embedded price data.
pub const BUILTIN_PRICES_TOML: &str = include_str!("prices.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    models: BTreeMap<String, Price>,
}

/// Prices by model name, with a tolerant lookup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    models: BTreeMap<String, Price>,
}

impl PriceTable {
    /// An empty table.
    pub fn new() -> Self {
        PriceTable::default()
    }

    /// The built-in table (current Claude, OpenAI and Gemini models, and the test models).
    pub fn builtin() -> Self {
        Self::from_toml(BUILTIN_PRICES_TOML).unwrap_or_default()
    }

    /// A table from TOML of the built-in file's shape (`[models."name"]` tables of `input`,
    /// `output`, `cache_read`, `cache_write`, optional `context_window`).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: PriceFile = toml::from_str(text).map_err(|e| e.to_string())?;
        Ok(PriceTable {
            models: file.models,
        })
    }

    /// Add or replace a model's price (exact name; it wins over tolerant matches).
    pub fn insert(&mut self, model: impl Into<String>, price: Price) {
        self.models.insert(model.into(), price);
    }

    /// The price of `model`: the exact name first, then, tolerantly, without a provider prefix
    /// (`openai/gpt-5.5`, `openrouter/anthropic/claude-sonnet-4-5`), a bracketed suffix
    /// (`claude-opus-4-8[1m]`), a date suffix (`-20250929`, `-2025-04-14`), in lower case, and
    /// with dots in version numbers read as dashes (`claude-sonnet-4.5`).
    pub fn get(&self, model: &str) -> Option<&Price> {
        if let Some(p) = self.models.get(model) {
            return Some(p);
        }
        candidates(model).find_map(|c| self.models.get(&c))
    }

    /// The cost of `usage` for `model`, or `None` for a model the table does not know.
    pub fn cost(&self, model: &str, usage: &Tokens) -> Option<f64> {
        self.get(model).map(|p| p.cost(usage))
    }

    /// The models the table knows, by exact name.
    pub fn models(&self) -> impl Iterator<Item = (&str, &Price)> {
        self.models.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// Names to try for `model`, most specific first.
fn candidates(model: &str) -> impl Iterator<Item = String> {
    let lower = model.trim().to_ascii_lowercase();
    let mut stages: Vec<String> = vec![lower.clone()];
    let no_bracket = strip_bracket(&lower).to_string();
    stages.push(no_bracket.clone());
    let no_prefix = no_bracket
        .rsplit_once('/')
        .map_or(no_bracket.as_str(), |(_, m)| m)
        .to_string();
    stages.push(no_prefix.clone());
    stages.push(strip_date(&no_prefix).to_string());
    let mut out: Vec<String> = Vec::new();
    for s in stages {
        for c in [s.clone(), s.replace('.', "-")] {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out.into_iter()
}

/// "claude-opus-4-8[1m]" → "claude-opus-4-8".
fn strip_bracket(s: &str) -> &str {
    match s.find('[') {
        Some(i) if s.ends_with(']') => s[..i].trim_end(),
        _ => s,
    }
}

/// "claude-sonnet-4-5-20250929" → "claude-sonnet-4-5"; "gpt-4.1-2025-04-14" → "gpt-4.1".
fn strip_date(s: &str) -> &str {
    let b = s.as_bytes();
    let digits_at = |from: usize, n: usize| {
        b.len() >= from + n && b[from..from + n].iter().all(u8::is_ascii_digit)
    };
    // -YYYYMMDD
    if b.len() > 9 && b[b.len() - 9] == b'-' && digits_at(b.len() - 8, 8) {
        return &s[..s.len() - 9];
    }
    // -YYYY-MM-DD
    if b.len() > 11
        && b[b.len() - 11] == b'-'
        && digits_at(b.len() - 10, 4)
        && b[b.len() - 6] == b'-'
        && digits_at(b.len() - 5, 2)
        && b[b.len() - 3] == b'-'
        && digits_at(b.len() - 2, 2)
    {
        return &s[..s.len() - 11];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Tokens {
        Tokens {
            input,
            output,
            cache_read,
            cache_write,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn builtin_parses_and_is_not_empty() {
        let t = PriceTable::from_toml(BUILTIN_PRICES_TOML).unwrap();
        assert!(t.len() > 30);
        assert_eq!(PriceTable::builtin(), t);
        for (name, p) in t.models() {
            assert_eq!(name, name.to_ascii_lowercase(), "{name}");
            for v in [p.input, p.output, p.cache_read, p.cache_write] {
                assert!(v.is_finite() && v >= 0.0, "{name}");
            }
            assert!(p.output >= p.input, "{name}");
            assert!(p.cache_read <= p.input, "{name}");
        }
    }

    #[test]
    fn exact_values_for_the_tested_models() {
        let t = PriceTable::builtin();
        let p = |m: &str| {
            let p = t.get(m).unwrap();
            (p.input, p.output, p.cache_read, p.cache_write)
        };
        assert_eq!(p("claude-sonnet-4-5"), (3.0, 15.0, 0.3, 3.75));
        assert_eq!(p("mock/mock-model"), (3.0, 15.0, 0.3, 3.75));
        assert_eq!(p("claude-opus-4-8"), (5.0, 25.0, 0.5, 6.25));
        assert_eq!(p("claude-haiku-4-5"), (1.0, 5.0, 0.1, 1.25));
        assert_eq!(p("gpt-5.5"), (5.0, 30.0, 0.5, 5.0));
        assert_eq!(p("gpt-4.1"), (2.0, 8.0, 0.5, 2.0));
        assert_eq!(p("gemini-2.5-pro"), (1.25, 10.0, 0.125, 1.25));
        assert_eq!(
            t.get("mock/mock-model").unwrap().context_window,
            Some(200_000)
        );
    }

    #[test]
    fn costs_match_what_the_agents_printed() {
        let t = PriceTable::builtin();
        // Claude Code's own figures for these token counts (reference transcripts).
        let c = t
            .cost("claude-opus-4-8[1m]", &usage(3600, 240, 900, 300))
            .unwrap();
        assert!(close(c, 0.026325), "{c}");
        let c = t
            .cost("claude-sonnet-4-5", &usage(3600, 240, 900, 300))
            .unwrap();
        assert!(close(c, 0.015795), "{c}");
        // opencode's step cost for (1200 + 80 + 300 cached) with the mock model's prices.
        let c = t.cost("mock/mock-model", &usage(1200, 80, 300, 0)).unwrap();
        assert!(close(c, 0.00489), "{c}");
        // Codex, gpt-5.5: 3600 new + 900 cached input, 240 output.
        let c = t.cost("gpt-5.5", &usage(3600, 240, 900, 0)).unwrap();
        assert!(close(c, 0.02565), "{c}");
        assert_eq!(t.cost("no-such-model", &usage(1, 1, 1, 1)), None);
    }

    #[test]
    fn tolerant_lookup() {
        let t = PriceTable::builtin();
        let sonnet = t.get("claude-sonnet-4-5");
        assert!(sonnet.is_some());
        for name in [
            "anthropic/claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
            "anthropic/claude-sonnet-4-5-20250929",
            "claude-sonnet-4-5[1m]",
            "claude-sonnet-4.5",
            "Claude-Sonnet-4-5",
            "openrouter/anthropic/claude-sonnet-4.5",
        ] {
            assert_eq!(t.get(name), sonnet, "{name}");
        }
        assert_eq!(t.get("openai/gpt-5.5"), t.get("gpt-5.5"));
        assert_eq!(t.get("gpt-4.1-2025-04-14"), t.get("gpt-4.1"));
        assert_eq!(t.get("models/gemini-2.5-pro"), t.get("gemini-2.5-pro"));
        assert!(t.get("gpt-4.1").is_some());
        // The exact name wins: mock/mock-model is not "mock-model".
        assert!(t.get("mock-model").is_none());
        assert!(t.get("").is_none());
        assert!(t.get("[").is_none());
        assert!(t.get("/").is_none());
    }

    #[test]
    fn insert_overrides() {
        let mut t = PriceTable::builtin();
        let mine = Price {
            input: 1.0,
            output: 2.0,
            cache_read: 0.0,
            cache_write: 0.0,
            context_window: Some(1000),
        };
        t.insert("my/model-1", mine);
        assert_eq!(t.get("my/model-1"), Some(&mine));
        t.insert("gpt-5.5", mine);
        assert_eq!(t.get("openai/gpt-5.5"), Some(&mine));
        let mut empty = PriceTable::new();
        assert!(empty.is_empty());
        empty.insert("x", Price::default());
        assert_eq!(empty.len(), 1);
    }

    #[test]
    fn bad_toml_is_an_error() {
        assert!(PriceTable::from_toml("[models.x]\ninput = 1\n").is_err());
        assert!(PriceTable::from_toml(
            "[models.x]\ninput = 1\noutput = 1\ncache_read = 1\ncache_write = 1\nbogus = 2\n"
        )
        .is_err());
        assert!(PriceTable::from_toml("nope").is_err());
    }

    #[test]
    fn date_stripping() {
        assert_eq!(
            strip_date("claude-sonnet-4-5-20250929"),
            "claude-sonnet-4-5"
        );
        assert_eq!(strip_date("gpt-4.1-2025-04-14"), "gpt-4.1");
        assert_eq!(strip_date("gpt-4.1"), "gpt-4.1");
        assert_eq!(strip_date("12345678"), "12345678");
        assert_eq!(strip_date(""), "");
        assert_eq!(strip_bracket("a[1m]"), "a");
        assert_eq!(strip_bracket("a[1m"), "a[1m");
    }
}

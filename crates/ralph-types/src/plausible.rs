//! The bounds of a believable agent call: what an agent (or the price table) says one call cost
//! or used is accepted only inside them. A figure outside is recorded as invalid, shown, and
//! never added to a total, the ledger's spend or a budget check: `total_cost_usd: -1` would
//! lower the machine-wide total, `1e308` would overflow every sum and block every project.
//!
//! The bounds are far above any real call (the costliest models bill well under $100 for a
//! whole context window, and no context holds a billion tokens) and far below where a sum of a
//! year of calls loses precision.

use crate::Tokens;

/// The most one agent call (an iteration or a side call) can believably cost, in USD.
pub const MAX_CALL_COST_USD: f64 = 1_000.0;

/// The most tokens of any one kind, and of all four together, one call can believably use.
pub const MAX_CALL_TOKENS: u64 = 1_000_000_000;

/// A cost one call can have: finite, not negative, at most [`MAX_CALL_COST_USD`].
pub fn plausible_cost(usd: f64) -> bool {
    usd.is_finite() && (0.0..=MAX_CALL_COST_USD).contains(&usd)
}

/// Token counts one call can have: each kind and the total at most [`MAX_CALL_TOKENS`].
pub fn plausible_tokens(t: &Tokens) -> bool {
    [t.input, t.output, t.cache_read, t.cache_write, t.total()]
        .iter()
        .all(|n| *n <= MAX_CALL_TOKENS)
}

/// A cost for a message: readable whatever its size (`1e308` must not print 300 digits).
pub fn describe_usd(usd: f64) -> String {
    if usd.is_finite() && usd.abs() < 1e6 {
        format!("${usd}")
    } else {
        format!("${usd:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(plausible_cost(0.0));
        assert!(plausible_cost(MAX_CALL_COST_USD));
        for bad in [-1.0, -0.0001, 1000.01, 1e308, f64::INFINITY, f64::NAN] {
            assert!(!plausible_cost(bad), "{bad}");
        }
        assert!(plausible_tokens(&Tokens::new(MAX_CALL_TOKENS, 0, 0, 0)));
        assert!(!plausible_tokens(&Tokens::new(MAX_CALL_TOKENS, 1, 0, 0)));
        assert!(!plausible_tokens(&Tokens::new(u64::MAX, 0, 0, 0)));
        assert_eq!(describe_usd(-1.0), "$-1");
        assert_eq!(describe_usd(1e308), "$1e308");
    }
}

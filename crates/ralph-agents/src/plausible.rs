//! Usage no call can have is rejected in one place, whatever the parser or the price table
//! said: the bounds are `ralph_types::plausible`'s.

use ralph_types::plausible::{describe_usd, plausible_cost, plausible_tokens, MAX_CALL_TOKENS};

use crate::event::{AgentOutcome, CostSource};

/// Reject the cost and tokens of `out` when either is implausible: both become unknown, the
/// source `Invalid` (a call that reports nonsense for one is not believed on the other). Returns
/// what was rejected, for the warning; `None` when everything was believable.
pub fn reject_implausible_usage(out: &mut AgentOutcome) -> Option<String> {
    let mut bad = Vec::new();
    if let Some(c) = out.cost_usd.filter(|c| !plausible_cost(*c)) {
        let what = match out.cost_source {
            CostSource::Computed => "a computed cost of",
            _ => "a cost of",
        };
        bad.push(format!("{what} {}", describe_usd(c)));
    }
    if let Some(t) = out.usage.filter(|t| !plausible_tokens(t)) {
        let n = [t.input, t.output, t.cache_read, t.cache_write]
            .into_iter()
            .max()
            .unwrap_or(0)
            .max(t.total());
        bad.push(format!(
            "{n} tokens (more than {MAX_CALL_TOKENS} in one call)"
        ));
    }
    if bad.is_empty() {
        return None;
    }
    out.cost_usd = None;
    out.usage = None;
    out.context_tokens = None;
    out.cost_source = CostSource::Invalid;
    Some(bad.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tokens;

    fn outcome(cost: Option<f64>, tokens: u64) -> AgentOutcome {
        AgentOutcome {
            cost_usd: cost,
            cost_source: CostSource::Reported,
            usage: Some(Tokens::new(tokens, 1, 0, 0)),
            ..AgentOutcome::default()
        }
    }

    #[test]
    fn believable_usage_is_kept() {
        let mut o = outcome(Some(0.5), 1000);
        assert_eq!(reject_implausible_usage(&mut o), None);
        assert_eq!(o.cost_usd, Some(0.5));
        assert_eq!(o.cost_source, CostSource::Reported);
    }

    #[test]
    fn negative_huge_or_nan_costs_and_absurd_tokens_are_invalid() {
        for (cost, tokens, said) in [
            (Some(-1.0), 10, "a cost of $-1"),
            (Some(1e308), 10, "a cost of $1e308"),
            (Some(f64::NAN), 10, "a cost of $NaN"),
            (Some(0.1), 2_000_000_000, "2000000001 tokens"),
        ] {
            let mut o = outcome(cost, tokens);
            let message = reject_implausible_usage(&mut o).unwrap();
            assert!(message.contains(said), "{message}");
            assert_eq!(o.cost_usd, None);
            assert_eq!(o.usage, None);
            assert_eq!(o.cost_source, CostSource::Invalid);
        }
    }
}

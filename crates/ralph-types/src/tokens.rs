//! Token counts, normalised across agents (CLI.md "Token kinds").

use serde::{Deserialize, Serialize};

/// Token counts of one call, one iteration or a whole run. `input` excludes tokens read from or
/// written to the cache; `output` includes reasoning tokens. Agents that count cached tokens
/// inside their input total (Codex, Gemini, Copilot) are normalised by their parsers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Tokens {
    pub const ZERO: Tokens = Tokens {
        input: 0,
        output: 0,
        cache_read: 0,
        cache_write: 0,
    };

    pub fn new(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Tokens {
        Tokens {
            input,
            output,
            cache_read,
            cache_write,
        }
    }

    /// All four kinds together: what `budget.max_tokens` counts.
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
    }

    /// Add `other` in place (saturating: a corrupt count must not wrap a budget to zero).
    pub fn add(&mut self, other: &Tokens) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cache_read = self.cache_read.saturating_add(other.cache_read);
        self.cache_write = self.cache_write.saturating_add(other.cache_write);
    }

    /// The fullest a request's context could have been: everything that went in.
    pub fn context(&self) -> u64 {
        self.input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
    }
}

impl std::ops::AddAssign for Tokens {
    fn add_assign(&mut self, rhs: Tokens) {
        self.add(&rhs);
    }
}

impl std::ops::Add for Tokens {
    type Output = Tokens;
    fn add(mut self, rhs: Tokens) -> Tokens {
        Tokens::add(&mut self, &rhs);
        self
    }
}

impl std::iter::Sum for Tokens {
    fn sum<I: Iterator<Item = Tokens>>(iter: I) -> Tokens {
        iter.fold(Tokens::ZERO, |a, b| a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_sums_saturate() {
        let a = Tokens::new(1, 2, 3, 4);
        assert_eq!(a.total(), 10);
        assert_eq!(a.context(), 8);
        let sum: Tokens = [a, a].into_iter().sum();
        assert_eq!(sum, Tokens::new(2, 4, 6, 8));
        let mut big = Tokens::new(u64::MAX, 0, 0, 0);
        big += a;
        assert_eq!(big.input, u64::MAX);
        assert_eq!(big.total(), u64::MAX);
    }

    #[test]
    fn serialises_with_the_contract_field_names() {
        let json = serde_json::to_string(&Tokens::new(1, 2, 3, 4)).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"input":1,"output":2,"cache_read":3,"cache_write":4}"#
        );
    }
}

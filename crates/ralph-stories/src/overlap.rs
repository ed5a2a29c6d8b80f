//! Whether two stories' `affected_paths` may touch the same file (rule 3 starts a story later
//! when it would overlap a running one).
//!
//! `affected_paths` is a prediction, never a lock, so the answer errs towards "may overlap":
//! a false "no" only costs a merge conflict the queue resolves, but we still want it rare.
//!
//! The rules, gitignore-style, every pattern relative to the repository root:
//!
//! - `/` separates segments; a pattern names the paths it matches **and everything under
//!   them** (a matched directory covers its files, as in gitignore): `src/db` and `src/db/`
//!   both cover `src/db/x.rs`, `src/db/**` covers everything inside `src/db`. One exception,
//!   so that `*.rs` does not overlap every file of the plan through an imagined
//!   `src/x.toml/a.rs`: a pattern whose last segment has an extension (a `.` after its first
//!   character) and no trailing `/` names a file, and covers only itself.
//! - A pattern without a `/` (other than a trailing one) matches at any depth, as in
//!   gitignore: `*.rs` and `Cargo.toml` overlap `src/x.rs` and `crates/a/Cargo.toml`. A
//!   leading `/` anchors it to the root instead: `/Cargo.toml` is only the root's.
//! - `**` as a whole segment is any number of segments (zero included); inside a segment it is
//!   a `*`. `*` is any run of characters within a segment, `?` one character, `[...]` a class
//!   (`[!...]` or `[^...]` negated, ranges `a-z`), `\x` the character `x`. An unclosed `[`
//!   is a literal `[`.
//! - Leading `./`, empty and `.` segments are dropped; a pattern that is empty, `.`, or uses
//!   `..` (outside the repository's vocabulary) covers everything.
//! - A pattern starting with `!` is ignored: in gitignore it can only narrow the set, so
//!   ignoring it keeps the answer conservative.
//! - A story with no (positive) patterns overlaps nothing: no prediction is not a
//!   prediction of conflict, and treating it as "everything" would serialise every plan whose
//!   planner left the field out.
//!
//! The answer is exact (two patterns overlap iff some path matches both, by a product-automaton
//! walk over segments, then over characters inside a segment) except for classes: two
//! positive classes are compared exactly, a negated class is assumed to meet any other class.

/// One story's `affected_paths`, parsed once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathSet {
    patterns: Vec<Vec<Seg>>,
}

impl PathSet {
    pub fn parse(patterns: &[String]) -> PathSet {
        PathSet {
            patterns: patterns.iter().filter_map(|p| parse_pattern(p)).collect(),
        }
    }

    /// No prediction: overlaps nothing.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether some path may be matched by a pattern of each.
    pub fn may_overlap(&self, other: &PathSet) -> bool {
        self.patterns
            .iter()
            .any(|a| other.patterns.iter().any(|b| patterns_meet(a, b)))
    }
}

/// Whether two stories' `affected_paths` may touch the same file (see the module's rules).
pub fn may_overlap(a: &[String], b: &[String]) -> bool {
    PathSet::parse(a).may_overlap(&PathSet::parse(b))
}

/// A path segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// `**`: any number of segments.
    Any,
    Glob(Vec<Tok>),
}

/// A character position inside a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// `*`
    Star,
    /// `?`
    One,
    Lit(char),
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

fn parse_pattern(raw: &str) -> Option<Vec<Seg>> {
    let raw = raw.trim();
    if raw.starts_with('!') {
        return None;
    }
    let anchored = raw.starts_with('/');
    let body = raw.trim_start_matches('/');
    let names: Vec<&str> = body
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if names.is_empty() || names.contains(&"..") {
        return Some(vec![Seg::Any]);
    }
    // gitignore: no slash except a trailing one → matches at any depth.
    let floating = !anchored && !body.trim_end_matches('/').contains('/');
    let file_like = !body.ends_with('/')
        && names
            .last()
            .is_some_and(|n| *n != "**" && n.char_indices().any(|(i, c)| i > 0 && c == '.'));
    let mut segs = Vec::with_capacity(names.len() + 2);
    if floating {
        segs.push(Seg::Any);
    }
    segs.extend(names.into_iter().map(|n| {
        if n == "**" {
            Seg::Any
        } else {
            Seg::Glob(parse_segment(n))
        }
    }));
    // A matched path covers everything under it, unless it names a file.
    if !file_like && segs.last() != Some(&Seg::Any) {
        segs.push(Seg::Any);
    }
    Some(segs)
}

fn parse_segment(s: &str) -> Vec<Tok> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                if out.last() != Some(&Tok::Star) {
                    out.push(Tok::Star);
                }
            }
            '?' => out.push(Tok::One),
            '\\' if i < chars.len() => {
                out.push(Tok::Lit(chars[i]));
                i += 1;
            }
            '[' => match parse_class(&chars[i..]) {
                Some((tok, used)) => {
                    out.push(tok);
                    i += used;
                }
                None => out.push(Tok::Lit('[')),
            },
            c => out.push(Tok::Lit(c)),
        }
    }
    out
}

/// `rest` follows a `[`: the class and how many characters it used (its `]` included), or
/// `None` when it is never closed.
fn parse_class(rest: &[char]) -> Option<(Tok, usize)> {
    let mut i = 0;
    let negated = matches!(rest.first(), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while i < rest.len() {
        let mut c = rest[i];
        if c == ']' && !first {
            return Some((Tok::Class { negated, ranges }, i + 1));
        }
        first = false;
        if c == '\\' && i + 1 < rest.len() {
            i += 1;
            c = rest[i];
        }
        if i + 2 < rest.len() && rest[i + 1] == '-' && rest[i + 2] != ']' {
            let hi = rest[i + 2];
            ranges.push((c.min(hi), c.max(hi)));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    None
}

fn patterns_meet(a: &[Seg], b: &[Seg]) -> bool {
    meet(
        a,
        b,
        |s| *s == Seg::Any,
        |x, y| match (x, y) {
            (Seg::Glob(x), Seg::Glob(y)) => segments_meet(x, y),
            // Stars are handled by `meet` itself.
            _ => true,
        },
    )
}

fn segments_meet(a: &[Tok], b: &[Tok]) -> bool {
    let starless = |s: &[Tok]| !s.contains(&Tok::Star);
    if starless(a) && starless(b) {
        // The common case (literal names): position by position, no table.
        return a.len() == b.len() && a.iter().zip(b).all(|(x, y)| chars_meet(x, y));
    }
    meet(a, b, |t| *t == Tok::Star, chars_meet)
}

/// Whether one character can be matched by both positions.
fn chars_meet(a: &Tok, b: &Tok) -> bool {
    match (a, b) {
        (Tok::Lit(x), Tok::Lit(y)) => x == y,
        (Tok::Lit(c), Tok::Class { negated, ranges })
        | (Tok::Class { negated, ranges }, Tok::Lit(c)) => {
            ranges.iter().any(|&(lo, hi)| lo <= *c && *c <= hi) != *negated
        }
        (
            Tok::Class {
                negated: false,
                ranges: x,
            },
            Tok::Class {
                negated: false,
                ranges: y,
            },
        ) => x
            .iter()
            .any(|&(a0, a1)| y.iter().any(|&(b0, b1)| a0 <= b1 && b0 <= a1)),
        // `?`, stars, and anything with a negated class: assume they meet.
        _ => true,
    }
}

/// Whether two sequences, each position matching one unit (a character, a segment) except the
/// stars that match any number of units, can match a common string of units.
///
/// `dp[i][j]`: `a[i..]` and `b[j..]` can. A star either matches nothing more (skip it) or
/// absorbs the unit the other side's current position matches (stay on it): the product of
/// the two automata, O(len(a) · len(b)).
fn meet<T>(a: &[T], b: &[T], star: impl Fn(&T) -> bool, one: impl Fn(&T, &T) -> bool) -> bool {
    let (n, m) = (a.len(), b.len());
    let w = m + 1;
    // Patterns are short: a table on the stack when it fits (this runs for every pair of
    // ready and running stories).
    let mut small = [false; 256];
    let mut large = Vec::new();
    let dp: &mut [bool] = if (n + 1) * w <= small.len() {
        &mut small
    } else {
        large.resize((n + 1) * w, false);
        &mut large
    };
    for i in (0..=n).rev() {
        for j in (0..=m).rev() {
            let v = if i == n && j == m {
                true
            } else if i < n && star(&a[i]) {
                dp[(i + 1) * w + j] || (j < m && dp[i * w + j + 1])
            } else if j < m && star(&b[j]) {
                dp[i * w + j + 1] || (i < n && dp[(i + 1) * w + j])
            } else if i < n && j < m {
                // The table first: `one` may be a whole segment's walk.
                dp[(i + 1) * w + j + 1] && one(&a[i], &b[j])
            } else {
                false
            };
            dp[i * w + j] = v;
        }
    }
    dp[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ov(a: &str, b: &str) -> bool {
        may_overlap(&[a.to_string()], &[b.to_string()])
    }

    #[test]
    fn a_table_of_pairs() {
        let cases: &[(&str, &str, bool)] = &[
            // Literal paths and prefixes: exact.
            ("src/db/x.rs", "src/db/x.rs", true),
            ("src/db/x.rs", "src/db/y.rs", false),
            ("src/db/**", "src/db/x.rs", true),
            ("src/db/", "src/db/x.rs", true),
            ("src/db", "src/db/x.rs", true),
            ("src/db", "src/dbx.rs", false),
            ("src/db/", "src/db2/x.rs", false),
            ("src/a/**", "src/b/**", false),
            ("src/a/**", "src/**", true),
            ("./src/a.rs", "src/a.rs", true),
            ("src//a.rs", "src/a.rs", true),
            // Top-level patterns without a slash float to any depth.
            ("*.rs", "src/x.rs", true),
            ("*.rs", "src/x.toml", false),
            ("*.rs", "docs/", true),
            ("*.rs", "src/x.toml/", true),
            ("src/a.rs", "src/a.rs/b.rs", false),
            ("src/Makefile", "src/Makefile/b.rs", true),
            ("src/*", "src/x/y.rs", true),
            ("Cargo.toml", "crates/a/Cargo.toml", true),
            ("/Cargo.toml", "crates/a/Cargo.toml", false),
            ("/Cargo.toml", "Cargo.toml", true),
            ("/*.rs", "src/x.rs", false),
            // Globs against globs.
            ("src/*.rs", "src/*_test.rs", true),
            ("src/*.rs", "src/*.toml", false),
            ("src/*.rs", "src/x/y.rs", false),
            ("src/**/*.rs", "src/x/y/z.rs", true),
            ("src/**/mod.rs", "src/**/lib.rs", false),
            ("**/migrations/**", "db/migrations/001.sql", true),
            ("db/**/001.sql", "db/*/00?.sql", true),
            ("a*b.rs", "*c.rs", false),
            ("a*b", "*c", true), // `ab/c`: under the first, matched by the second
            ("a*", "*b", true),
            ("src/x?.rs", "src/xy.rs", true),
            ("src/x?.rs", "src/x.rs", false),
            // Classes.
            ("src/[ab].rs", "src/a.rs", true),
            ("src/[ab].rs", "src/c.rs", false),
            ("src/[!ab].rs", "src/a.rs", false),
            ("src/[!ab].rs", "src/c.rs", true),
            ("src/[a-c].rs", "src/[x-z].rs", false),
            ("src/[a-c].rs", "src/[c-z].rs", true),
            ("src/[!a].rs", "src/[!b].rs", true),
            ("src/[x.rs", "src/[x.rs", true),
            ("src/[x.rs", "src/x.rs", false),
            ("src/\\*.rs", "src/a.rs", false),
            // Outside the vocabulary: everything.
            ("", "src/x.rs", true),
            (".", "src/x.rs", true),
            ("../x", "src/x.rs", true),
        ];
        for &(a, b, want) in cases {
            assert_eq!(ov(a, b), want, "{a:?} vs {b:?}");
            assert_eq!(ov(b, a), want, "{b:?} vs {a:?} (symmetric)");
        }
    }

    #[test]
    fn no_prediction_overlaps_nothing_and_negations_are_ignored() {
        let all = vec!["**".to_string()];
        assert!(!may_overlap(&[], &all));
        assert!(!may_overlap(&all, &[]));
        assert!(!may_overlap(&["!src/**".to_string()], &all));
        assert!(may_overlap(
            &["src/**".to_string(), "!src/x.rs".to_string()],
            &["src/x.rs".to_string()]
        ));
        assert!(PathSet::parse(&[]).is_empty());
    }

    #[test]
    fn any_pair_of_patterns_is_enough() {
        let a = vec!["docs/**".to_string(), "src/db/**".to_string()];
        let b = vec!["src/api/**".to_string(), "src/db/schema.rs".to_string()];
        let c = vec!["src/api/**".to_string(), "tests/**".to_string()];
        assert!(may_overlap(&a, &b));
        assert!(!may_overlap(&a, &c));
    }

    #[test]
    fn many_stars_stay_fast() {
        let a = "*a".repeat(40);
        let b = "*b".repeat(40);
        assert!(!ov(&format!("x/{a}"), &format!("x/{b}")));
        assert!(ov(&format!("x/{a}"), &format!("x/*{b}a")));
    }
}

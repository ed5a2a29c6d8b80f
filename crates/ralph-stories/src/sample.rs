//! Plans made up for tests and benchmarks: a fixed 16-story plan (a diamond, chains and
//! joins) and random plans, with expected durations, all from a seed (no randomness of the
//! machine's: the same seed gives the same plan everywhere).

use crate::{Layer, Plan, Story};

/// SplitMix64: small, fast, good enough to draw plans.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// In `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// In `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// A story with only what scheduling looks at.
pub fn story(id: &str, depends_on: &[&str], affected_paths: &[&str]) -> Story {
    Story {
        id: id.to_string(),
        title: id.to_string(),
        layer: Layer::other(),
        depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
        affected_paths: affected_paths.iter().map(|p| p.to_string()).collect(),
        description: String::new(),
        criteria: Vec::new(),
        complexity: None,
    }
}

pub fn plan(name: &str, stories: Vec<Story>) -> Plan {
    Plan {
        name: name.to_string(),
        prd: None,
        design: None,
        architecture: None,
        stories,
    }
}

/// The 16-story plan: a diamond (`A` → `B`, `C`, `D` → `E` → `M`), two chains (`F`…`I`,
/// `J`…`L`) joined by `N`, a leaf on the diamond's root (`O`) and a final join (`P`), with
/// `affected_paths` of which some overlap (`B`/`D`, `C`/`E`, `H`/`I`, `J`/`K`, `L`/`N`) and
/// one story without any (`M`). Durations drawn in `[0.2, 2.0)` from `seed`.
pub fn mixed16(seed: u64) -> (Plan, Vec<f64>) {
    let spec: [(&str, &[&str], &[&str]); 16] = [
        ("A", &[], &["db/migrations/**"]),
        ("B", &["A"], &["src/db/**"]),
        ("C", &["A"], &["src/api/**"]),
        ("D", &["A"], &["src/db/query.rs"]),
        ("E", &["B", "C", "D"], &["src/api/routes.rs"]),
        ("F", &[], &["src/ui/**"]),
        ("G", &["F"], &["src/ui/forms/**"]),
        ("H", &["G"], &["docs/**"]),
        ("I", &["H"], &["*.md"]),
        ("J", &[], &["infra/**"]),
        ("K", &["J"], &["infra/ci.yml"]),
        ("L", &["K"], &["src/service/**"]),
        ("M", &["E"], &[]),
        ("N", &["I", "L"], &["src/service/mod.rs"]),
        ("O", &["A"], &["tests/**"]),
        ("P", &["M", "N"], &["README.md"]),
    ];
    let stories = spec.iter().map(|(id, d, p)| story(id, d, p)).collect();
    let mut rng = Rng::new(seed);
    let durations = (0..spec.len()).map(|_| rng.range(0.2, 2.0)).collect();
    (plan("mixed16", stories), durations)
}

/// `n` stories, each depending on up to `max_deps` earlier ones (fewer near the start), with
/// `affected_paths` drawn from a dozen directories (some stories without any) and durations
/// in `[0.2, 2.0)`.
pub fn random_plan(seed: u64, n: usize, max_deps: usize) -> (Plan, Vec<f64>) {
    const DIRS: [&str; 12] = [
        "src/db/**",
        "src/api/**",
        "src/api/routes.rs",
        "src/ui/**",
        "src/service/**",
        "docs/**",
        "*.md",
        "infra/**",
        "tests/**",
        "db/migrations/**",
        "src/db/schema.rs",
        "Cargo.toml",
    ];
    let mut rng = Rng::new(seed);
    let mut stories = Vec::with_capacity(n);
    let mut durations = Vec::with_capacity(n);
    for i in 0..n {
        let mut deps: Vec<String> = Vec::new();
        for _ in 0..rng.below(max_deps + 1).min(i) {
            let d = format!("S{}", rng.below(i));
            if !deps.contains(&d) {
                deps.push(d);
            }
        }
        let paths: Vec<&str> = (0..rng.below(3))
            .map(|_| DIRS[rng.below(DIRS.len())])
            .collect();
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        stories.push(story(&format!("S{i}"), &deps, &paths));
        durations.push(rng.range(0.2, 2.0));
    }
    (plan("random", stories), durations)
}

//! `[safety]` and `[git]`: guardrails and checkpoints.

use toml_edit::TableLike;

use super::{entries, Entry, IntRule, Result, Walker};
use crate::config::{GitConf, SafetyConf};

impl Walker<'_> {
    pub(crate) fn safety(&mut self, table: &dyn TableLike) -> Result<SafetyConf> {
        let mut conf = SafetyConf::default();
        for e in &entries("safety", table) {
            self.record(e);
            let count = |w: &Self, e: &Entry, min: i64, example: i64, hint: &'static str| {
                w.whole_u32(
                    e,
                    IntRule {
                        min,
                        max: i64::from(u32::MAX),
                        example,
                        below_min_hint: hint,
                    },
                )
            };
            match e.name {
                "max_files_changed" => {
                    conf.max_files_changed = Some(count(
                        self,
                        e,
                        1,
                        200,
                        "at least one file must be allowed to change",
                    )?)
                }
                "no_progress_iterations" => {
                    conf.no_progress_iterations = Some(count(
                        self,
                        e,
                        1,
                        3,
                        "at least one iteration without progress",
                    )?)
                }
                "max_output_mb" => {
                    conf.max_output_mb = Some(u64::from(count(
                        self,
                        e,
                        1,
                        100,
                        "agent output per iteration, in MiB, kept in the artifact",
                    )?))
                }
                "protected_paths" => {
                    let list = self.strings(e, &[".git/**", ".ralph/**", "ralph.toml"])?;
                    self.no_empty_items(e, &list, "a glob such as \".env\"")?;
                    if let Err(err) = ralph_core::guard::PathGuard::new(&list) {
                        return Err(self.bad(
                            e,
                            format!("invalid glob: {err}"),
                            "write globs like \".git/**\", \"secrets/*.key\", \"ralph.toml\"",
                        ));
                    }
                    conf.protected_paths = Some(list);
                }
                "blocked_commands" => {
                    let list = self.strings(e, &["npm publish", "re:^terraform\\s+destroy"])?;
                    self.no_empty_items(e, &list, "a command prefix such as \"npm publish\"")?;
                    if let Err(err) = ralph_core::guard::CommandGuard::new(&list) {
                        return Err(self.bad(
                            e,
                            format!("invalid blocked command: {err}"),
                            "a plain command prefix like \"npm publish\", or \"re:<regex>\" with a \
                             valid Rust regex",
                        ));
                    }
                    conf.blocked_commands = Some(list);
                }
                _ => return Err(self.unknown_key(e, "safety")),
            }
        }
        Ok(conf)
    }

    pub(crate) fn git(&mut self, table: &dyn TableLike) -> Result<GitConf> {
        let mut conf = GitConf::default();
        for e in &entries("git", table) {
            self.record(e);
            match e.name {
                "checkpoint_every" => {
                    conf.checkpoint_every = Some(self.whole_u32(
                        e,
                        IntRule {
                            min: 0,
                            max: i64::from(u32::MAX),
                            example: 1,
                            below_min_hint: "use 0 to turn checkpoints off",
                        },
                    )?)
                }
                "require" => conf.require = Some(self.boolean(e, "true")?),
                "max_untracked_mb" => {
                    conf.max_untracked_mb = Some(u64::from(self.whole_u32(
                        e,
                        IntRule {
                            min: 1,
                            max: i64::from(u32::MAX),
                            example: 10,
                            below_min_hint: "untracked files up to this size go into checkpoints",
                        },
                    )?))
                }
                "allow_ref_rewrites" => {
                    let list = self.strings(e, &["refs/heads/agent/*", "HEAD"])?;
                    self.no_empty_items(e, &list, "a ref pattern such as \"refs/heads/agent/*\"")?;
                    conf.ref_rules = ralph_git::RefRules::new(&list).map_err(|err| {
                        self.bad(
                            e,
                            err,
                            "full ref patterns: `*` within a component, `**` across them, \
                             e.g. [\"refs/heads/agent/**\", \"HEAD\"]",
                        )
                    })?;
                }
                _ => return Err(self.unknown_key(e, "git")),
            }
        }
        Ok(conf)
    }
}

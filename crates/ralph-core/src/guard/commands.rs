//! The command guard: the user's `safety.blocked_commands` rules compiled, and the entry point
//! that hands a command to the [`Analyzer`] for the built-in rules.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use regex::Regex;

use super::analyzer::Analyzer;
use super::lexer::shell_words;
use super::paths::{norm_components, PathGuard};
use super::syntax::{basename, prog_name, Word};
use super::{excerpt, Blocked, GuardError};

#[derive(Debug, Clone)]
enum UserRule {
    Prefix { pattern: String, words: Vec<String> },
    Regex { pattern: String, re: Regex },
}

impl UserRule {
    fn id(&self) -> String {
        match self {
            UserRule::Prefix { pattern, .. } | UserRule::Regex { pattern, .. } => {
                format!("user:{pattern}")
            }
        }
    }
}

/// Refuses destructive shell commands: the built-in rules plus `safety.blocked_commands`.
#[derive(Debug, Clone, Default)]
pub struct CommandGuard {
    user: Vec<UserRule>,
    home: Option<Vec<String>>,
    /// The repository's git aliases (`alias.NAME` → value), expanded like git does.
    git_aliases: Vec<(String, String)>,
    /// Files that commands checked so far download (shared by clones: one run's guard).
    downloads: Arc<Mutex<HashSet<String>>>,
}

impl CommandGuard {
    /// The built-in rules plus `extra` (see the [module docs](super) for the pattern syntax).
    pub fn new(extra: &[String]) -> Result<CommandGuard, GuardError> {
        let mut user = Vec::new();
        for pattern in extra {
            if pattern.trim().is_empty() {
                return Err(GuardError::EmptyPattern);
            }
            if let Some(re) = pattern.strip_prefix("re:") {
                if re.is_empty() {
                    return Err(GuardError::EmptyPattern);
                }
                let re = Regex::new(re).map_err(|e| GuardError::InvalidRegex {
                    pattern: pattern.clone(),
                    message: e.to_string(),
                })?;
                user.push(UserRule::Regex {
                    pattern: pattern.clone(),
                    re,
                });
            } else {
                let words = shell_words(pattern).ok_or_else(|| GuardError::InvalidPattern {
                    pattern: pattern.clone(),
                })?;
                user.push(UserRule::Prefix {
                    pattern: pattern.clone(),
                    words,
                });
            }
        }
        Ok(CommandGuard {
            user,
            home: None,
            git_aliases: Vec::new(),
            downloads: Arc::default(),
        })
    }

    /// The user's home directory, for `~` and `$HOME`. Without it ralph still knows `~` itself;
    /// it guesses the home from a project under `/home/<user>/`, `/Users/<user>/` or `/root/`
    /// to recognise `rm -rf ~/project`.
    pub fn with_home_dir(mut self, home: Option<&Path>) -> CommandGuard {
        self.home = home
            .filter(|h| h.is_absolute())
            .and_then(norm_components)
            .filter(|c| !c.is_empty());
        self
    }

    /// The git aliases the repository's configuration defines (`(name, value)`, as
    /// `git config --get-regexp '^alias\.'` lists them): `git NAME …` is checked as what it
    /// expands to, so an alias `nuke = reset --hard` is caught like `git reset --hard`.
    pub fn with_git_aliases(mut self, aliases: Vec<(String, String)>) -> CommandGuard {
        self.git_aliases = aliases;
        self
    }

    pub(super) fn git_aliases(&self) -> &[(String, String)] {
        &self.git_aliases
    }

    pub(super) fn downloads(&self) -> HashSet<String> {
        // A poisoned lock only means another check panicked: what it held is still right.
        match self.downloads.lock() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(super) fn remember_downloads(&self, files: &HashSet<String>) {
        let mut d = match self.downloads.lock() {
            Ok(d) => d,
            Err(poisoned) => poisoned.into_inner(),
        };
        d.extend(files.iter().cloned());
    }

    /// Check one shell command as the agent sent it, run from `project_root`.
    pub fn check(&self, command: &str, project_root: &Path) -> Option<Blocked> {
        self.analyzer(project_root, None).check_command(command)
    }

    pub(super) fn analyzer<'g>(
        &'g self,
        project_root: &Path,
        paths: Option<&'g PathGuard>,
    ) -> Analyzer<'g> {
        let root = norm_components(project_root).unwrap_or_default();
        let home = self.home.clone().or_else(|| guess_home(&root));
        Analyzer {
            guard: self,
            paths,
            root,
            home,
            known: Default::default(),
        }
    }

    pub(super) fn user_match(&self, words: &[Word]) -> Option<Blocked> {
        if self.user.is_empty() {
            return None;
        }
        let first = words.first()?;
        let prog = prog_name(first);
        let joined = words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        for rule in &self.user {
            let hit = match rule {
                UserRule::Prefix { words: pat, .. } => {
                    pat.len() <= words.len()
                        && pat.first().is_some_and(|p| basename(p) == prog.as_str())
                        && pat.iter().zip(words).skip(1).all(|(p, w)| *p == w.text)
                }
                UserRule::Regex { re, .. } => re.is_match(&joined),
            };
            if hit {
                return Some(Blocked {
                    rule: rule.id(),
                    reason: format!("`{}` matches blocked_commands", excerpt(&joined)),
                });
            }
        }
        None
    }

    pub(super) fn user_regex_raw(&self, text: &str) -> Option<Blocked> {
        for rule in &self.user {
            if let UserRule::Regex { re, .. } = rule {
                if re.is_match(text) {
                    return Some(Blocked {
                        rule: rule.id(),
                        reason: format!("`{}` matches blocked_commands", excerpt(text)),
                    });
                }
            }
        }
        None
    }
}

fn guess_home(root: &[String]) -> Option<Vec<String>> {
    match root {
        [first, user, ..] if first == "home" || first == "Users" => {
            Some(vec![first.clone(), user.clone()])
        }
        [first, ..] if first == "root" => Some(vec![first.clone()]),
        _ => None,
    }
}

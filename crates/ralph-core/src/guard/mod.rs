//! The destructive-command guard: what agents may not run and which files they may not write.
//!
//! Agents run `git reset --hard`, `rm -rf` and force-pushes on their own. ralph catches them
//! itself, whatever the agent's own permission system says: every tool use of every structured
//! backend is checked as it streams ([`Guard::check_tool_use`]), and a match is the engine's cue
//! to kill the agent's process group at once. Deny lists passed to agents that have them
//! ([`default_deny_rules`], `Backend::deny_args`) are defense in depth only.
//!
//! # Commands
//!
//! [`CommandGuard::check`] parses the command the way a POSIX shell would, not by substring:
//! it splits compound commands (`;`, `&&`, `||`, `|`, `&`, newlines, subshells), follows
//! quoting and escapes, looks inside command and process substitutions (`$(…)`, backticks,
//! `<(…)`), into `sh -c '…'`/`bash -lc "…"` scripts (Codex wraps every command that way),
//! `eval`, here-documents fed to a shell, and `find -exec`; it strips prefixes (`VAR=1`, `env`,
//! `command`, `exec`, `nohup`, `time`, `nice`, `timeout`, `xargs`, `stdbuf`, `setsid`,
//! `busybox`, …) and absolute program paths (`/usr/bin/git`), and follows `cd` to know which
//! directory `.`, `..` or `*` mean. Quoted text is data: `echo "rm -rf /"` and
//! `grep -r "git push -f" .` pass.
//!
//! It also resolves what is known before the command runs (issue 9):
//!
//! * git's abbreviated long options (`git reset --har`, `git push --forc`,
//!   `--force-with-lea`): git accepts any unambiguous prefix, and an ambiguous one fails, so
//!   every prefix of a dangerous option counts as that option;
//! * git aliases: `git -c alias.x='reset --hard' x`, `--config-env` aliases (value unknown:
//!   blocked), shell aliases (`!rm -rf /`, parsed as a script), chains of aliases, the
//!   repository's own ([`CommandGuard::with_git_aliases`]); defining an alias that would be
//!   blocked (`git config alias.nuke 'reset --hard'`) is blocked, so no later call can use it;
//! * variables assigned anywhere in the command (`G=git; $G push -f`, `export`, `for G in …`;
//!   every value counts) and substitutions that print literal text (`$(echo rm)`,
//!   `$(printf %s rm)`, `$(which rm)`), in the program and in its arguments (`D=/; rm -rf $D`);
//! * what `xargs` runs with, when the pipeline feeds it known words (`echo .git | xargs rm
//!   -rf`, `pwd | xargs …`, a `find` that prints its start points);
//! * scripts piped into a shell or interpreter that are not literal text (`… | base64 -d | sh`,
//!   `cat x | python -`), and files a download wrote run later (`curl -o x.sh … && sh x.sh`,
//!   `./x.sh`, `source x.sh`), in the same command or a later one checked by the same guard
//!   (one run).
//!
//! A program that stays unknown (`$CMD`, `$(… | base64 -d)`), or was computed by a
//! substitution or variable and may be `rm`, `find` or `git` (`$(echo rm) -rf /tmp/x`), is
//! judged by its arguments: `-rf` (one cluster, or `--recursive --force`), or arguments that
//! would be destructive for `git` or `find`, block it as `unresolved-program`. A computed
//! program known to be something else (`$(which python3) -m pip install -r … -f …`) is not.
//!
//! The built-in rules ([`builtin_rules`], stable ids):
//!
//! | id | blocks |
//! |---|---|
//! | `rm-rf-root` | recursive `rm` of `/`, `/*` or a top-level system directory (`/usr`, `/etc`, `/home`, …) |
//! | `rm-rf-home` | recursive `rm` of the home directory (`~`, `~/`, `~/*`, `$HOME`, `~user`) |
//! | `rm-rf-parent` | recursive `rm` of a directory containing the project (`..`, `../..`, …) |
//! | `rm-rf-project` | recursive `rm` of the whole project (`.`, `./`, `*` at the root, its absolute path, `$PWD`) |
//! | `rm-rf-git` | recursive `rm` of the project's `.git` (or inside it), or of `.*` at the root |
//! | `rm-rf-ralph` | recursive `rm` of the project's `.ralph` (or inside it) |
//! | `sudo` | `sudo`, `doas`, `su`, `pkexec`, `run0` |
//! | `git-push-force` | `git push` with `--force`, `-f`, `--force-with-lease`, or a `+refspec` |
//! | `git-push-mirror` | `git push --mirror` |
//! | `git-push-delete` | `git push --delete`/`-d`/`--prune`, or a `:branch` refspec |
//! | `git-reset-hard` | `git reset --hard` (any ref) |
//! | `git-clean-force` | `git clean` with `-f` and `-d`, `-x` or `-X` (not with `-n`) |
//! | `git-discard-changes` | `git checkout [REF] [--] .` (or `:/`, `*`, the root), `git restore [--source=…] .` on the worktree, `git checkout -f`, `git switch -f`/`--discard-changes` |
//! | `git-ralph-refs` | `git update-ref`/`symbolic-ref`/`branch`/`tag`/`push`/`replace`/`reflog` naming `refs/ralph/` (the checkpoints) |
//! | `mkfs` | `mkfs`, `mkfs.*`, `mke2fs`, `mkswap`, `wipefs` |
//! | `write-device` | `dd of=/dev/…` or a redirection/`tee` to a device (not `/dev/null`, `/dev/stderr`, …) |
//! | `chmod-recursive-root` | `chmod`/`chown`/`chgrp -R` on `/`, a system directory, home or a parent of the project |
//! | `curl-pipe-shell` | a download piped into a shell or interpreter (`curl … \| sh`, `wget -O- … \| sudo bash`), `sh <(curl …)`, `bash -c "$(curl …)"`, `eval "$(curl …)"`, `source <(curl …)` |
//! | `pipe-to-shell` | a shell or interpreter reading a script computed by a pipeline (`… \| base64 -d \| sh`, `cat x \| python -`); literal text (`echo 'ls' \| sh`) is parsed instead |
//! | `unresolved-program` | a program computed when the command runs (`$CMD`, `$(…)`, a `--config-env` git alias) with `-rf`, or arguments destructive for `git` or `find` |
//! | `kill-all` | `kill -1` (every process), `killall5`, `pkill -u`/`killall -u` without a name, `shutdown`, `reboot`, `poweroff`, `halt` |
//! | `kill-ralph` | `pkill`/`killall` of a pattern matching ralph, `kill $(pgrep ralph)`, `pgrep ralph \| xargs kill`, `kill $PPID` (the agent) |
//! | `fork-bomb` | `:(){ :\|:& };:` and its renamings |
//! | `nesting-limit` | substitutions or `sh -c` wrappers nested deeper than 8 levels |
//!
//! `git checkout main -- file.rs`, `git restore --staged .`, `git reset --soft`, `git clean -n`,
//! `rm -rf target/`, `find . -name '*.o' -delete` and `git push origin main` pass.
//!
//! Limits: what only exists at run time is not seen — unknown variables as arguments
//! (`rm -rf "$DIR"`), what `xargs` reads from an unknown source, code in other languages
//! (`python -c "shutil.rmtree…"`), a script written by other means in one tool call and run in
//! the next, an alias added to the git config behind git's back during a run, commands run elsewhere
//! (`ssh`, `docker exec`). The parser is the first line, not the only one: checkpoints, the
//! checks after each iteration and the sandbox cover those.
//!
//! # User rules (`safety.blocked_commands`)
//!
//! Added to the built-in set by [`CommandGuard::new`]:
//!
//! * a plain string is a **shell-word prefix**: `"npm publish"` blocks every simple command
//!   whose leading words are `npm publish` (`npm publish --tag x`, `/usr/bin/npm publish`,
//!   `env CI=1 npm publish`, inside `bash -lc '…'`), but not `npm run publish` or
//!   `echo npm publish`. The first word is compared by its base name. The pattern is split into
//!   words the way the shell would (quotes allowed). It is also tried at every wrapper level,
//!   so `"nohup"` blocks `nohup …` itself.
//! * `re:<regex>` is a **regular expression** (Rust `regex` syntax), searched unanchored in the
//!   command exactly as the agent sent it, in every nested script, and in every simple command
//!   after quote removal and unwrapping (words joined by single spaces).
//!
//! A user rule's id is `user:` followed by the pattern as written.
//!
//! # Paths
//!
//! [`PathGuard`] matches globs (`globset` syntax; `*` stays within one path component, `**`
//! crosses them) against paths relative to the project root. `X/**` also matches `X` itself, a
//! trailing `/` means `/**`, and leading `./` or `/` are ignored (globs are always relative to the
//! root). [`paths_of`] extracts the files an edit tool writes; [`Guard`] also checks shell
//! redirections and `tee` targets against the protected paths.

use std::fmt;
use std::path::Path;

/// `return` the first refusal.
macro_rules! found {
    ($e:expr) => {
        if let Some(b) = $e {
            return Some(b);
        }
    };
}

mod analyzer;
mod commands;
mod lexer;
mod paths;
mod rules;
mod syntax;

pub use commands::CommandGuard;
pub use paths::{relative_to_root, PathGuard, DEFAULT_PROTECTED_PATHS, PROTECTED_PATH_RULE};
/// What a tool use runs or writes, for every backend's tools: the knowledge lives with the
/// backends (`ralph_agents::tools`); the guard asks about any backend's tool names, so a custom
/// agent speaking another CLI's format is checked too.
pub use ralph_agents::tools::{command_any as command_of, paths_any as paths_of};
pub use rules::{builtin_rules, default_deny_rules, BuiltinRule};

use paths::protected;

/// Longest command excerpt quoted in a [`Blocked::reason`].
const EXCERPT_MAX: usize = 200;

/// Why a guard could not be built from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("blocked command pattern is empty")]
    EmptyPattern,
    #[error("blocked command pattern `{pattern}` is not one simple command (use `re:` for a regular expression)")]
    InvalidPattern { pattern: String },
    #[error("invalid regular expression in blocked command pattern `{pattern}`: {message}")]
    InvalidRegex { pattern: String, message: String },
    #[error("invalid protected path glob `{glob}`: {message}")]
    InvalidGlob { glob: String, message: String },
}

/// A refused tool use: which rule, and a one-line human explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// Stable id: a built-in rule id (see [`builtin_rules`]), `user:<pattern>` or
    /// [`PROTECTED_PATH_RULE`].
    pub rule: String,
    pub reason: String,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.rule)
    }
}

/// `s` on one line, cut to [`EXCERPT_MAX`] characters.
fn excerpt(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= EXCERPT_MAX {
        one
    } else {
        let cut: String = one.chars().take(EXCERPT_MAX).collect();
        format!("{cut}…")
    }
}

/// The command guard and the path guard together: what the engine checks every tool use with.
#[derive(Debug, Clone)]
pub struct Guard {
    pub commands: CommandGuard,
    pub paths: PathGuard,
}

impl Guard {
    /// From `safety.blocked_commands` (added to the built-in rules) and
    /// `safety.protected_paths` (used as given).
    pub fn new(
        blocked_commands: &[String],
        protected_paths: &[String],
    ) -> Result<Guard, GuardError> {
        Ok(Guard {
            commands: CommandGuard::new(blocked_commands)?,
            paths: PathGuard::new(protected_paths)?,
        })
    }

    /// Check a shell command: the command rules, plus redirections and `tee` into protected
    /// paths.
    pub fn check_command(&self, command: &str, project_root: &Path) -> Option<Blocked> {
        self.commands
            .analyzer(project_root, Some(&self.paths))
            .check_command(command)
    }

    /// Check one ToolUse event: its shell command ([`command_of`]) and the files it writes
    /// ([`paths_of`]).
    pub fn check_tool_use(
        &self,
        name: &str,
        input_json: &str,
        project_root: &Path,
    ) -> Option<Blocked> {
        if let Some(cmd) = command_of(name, input_json) {
            found!(self.check_command(&cmd, project_root));
        }
        for p in paths_of(name, input_json) {
            if let Some(glob) = self.paths.check_path(&p, project_root) {
                let rel = relative_to_root(&p, project_root).unwrap_or(p.clone());
                return Some(protected(&rel, glob));
            }
        }
        None
    }
}

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
//! | `fork-bomb` | `:(){ :\|:& };:` and its renamings |
//! | `nesting-limit` | substitutions or `sh -c` wrappers nested deeper than 8 levels |
//!
//! `git checkout main -- file.rs`, `git restore --staged .`, `git reset --soft`, `git clean -n`,
//! `rm -rf target/`, `find . -name '*.o' -delete` and `git push origin main` pass.
//!
//! Limits: what only exists at run time is not seen — a computed program (`$(echo rm) -rf /`),
//! unknown variables (`rm -rf "$DIR"`), code in other languages (`python -c "shutil.rmtree…"`),
//! obfuscation (`base64 -d | sh`), a script downloaded to a file and run later, commands run
//! elsewhere (`ssh`, `docker exec`). Checkpoints and the sandbox cover those.
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
use std::path::{Component, Path};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ralph_agents::DenyRule;
use regex::Regex;
use serde_json::Value;

/// How deep substitutions and `sh -c` scripts may nest before the command is refused.
const MAX_DEPTH: usize = 8;

/// Cap on unwrapping prefixes such as `env nohup nice …`.
const MAX_UNWRAP: usize = 32;

/// Longest command excerpt quoted in a [`Blocked::reason`].
const EXCERPT_MAX: usize = 200;

/// The default `safety.protected_paths`.
pub const DEFAULT_PROTECTED_PATHS: &[&str] = &[".git/**", ".ralph/**", "ralph.toml"];

/// The rule id for a write to a protected path.
pub const PROTECTED_PATH_RULE: &str = "protected-path";

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

/// A built-in command rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinRule {
    pub id: &'static str,
    /// What it blocks, completing "the command …".
    pub description: &'static str,
}

const RULES: &[BuiltinRule] = &[
    BuiltinRule {
        id: "rm-rf-root",
        description: "deletes the filesystem root or a top-level system directory",
    },
    BuiltinRule {
        id: "rm-rf-home",
        description: "deletes the home directory",
    },
    BuiltinRule {
        id: "rm-rf-parent",
        description: "deletes a directory that contains the project",
    },
    BuiltinRule {
        id: "rm-rf-project",
        description: "deletes the whole project",
    },
    BuiltinRule {
        id: "rm-rf-git",
        description: "deletes the project's git repository (.git)",
    },
    BuiltinRule {
        id: "rm-rf-ralph",
        description: "deletes ralph's state (.ralph)",
    },
    BuiltinRule {
        id: "sudo",
        description: "runs a command with elevated privileges",
    },
    BuiltinRule {
        id: "git-push-force",
        description: "force-pushes, rewriting remote history",
    },
    BuiltinRule {
        id: "git-push-mirror",
        description: "mirror-pushes, overwriting and deleting remote refs",
    },
    BuiltinRule {
        id: "git-push-delete",
        description: "deletes remote branches or tags",
    },
    BuiltinRule {
        id: "git-reset-hard",
        description: "discards uncommitted changes (git reset --hard)",
    },
    BuiltinRule {
        id: "git-clean-force",
        description: "deletes untracked files and directories (git clean -f with -d or -x)",
    },
    BuiltinRule {
        id: "git-discard-changes",
        description: "discards all uncommitted changes in the working tree",
    },
    BuiltinRule {
        id: "git-ralph-refs",
        description: "changes ralph's checkpoint refs (refs/ralph/)",
    },
    BuiltinRule {
        id: "mkfs",
        description: "formats or wipes a filesystem",
    },
    BuiltinRule {
        id: "write-device",
        description: "writes to a device",
    },
    BuiltinRule {
        id: "chmod-recursive-root",
        description: "recursively changes permissions or ownership outside the project",
    },
    BuiltinRule {
        id: "curl-pipe-shell",
        description: "runs a downloaded script",
    },
    BuiltinRule {
        id: "fork-bomb",
        description: "is a fork bomb",
    },
    BuiltinRule {
        id: "nesting-limit",
        description: "nests substitutions or shell scripts too deeply to check",
    },
];

/// The built-in command rules, in the order they are documented.
pub fn builtin_rules() -> &'static [BuiltinRule] {
    RULES
}

fn description(id: &str) -> &'static str {
    RULES
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.description)
        .unwrap_or("is blocked")
}

/// Command prefixes passed to agents with a deny list (Claude `--disallowedTools`, Copilot
/// `--deny-tool`) through `Backend::deny_args`. Defense in depth: a prefix list cannot express
/// what [`CommandGuard`] checks, and agents match it their own way.
pub fn default_deny_rules() -> Vec<DenyRule> {
    [
        "rm -rf /",
        "rm -rf /*",
        "rm -rf ~",
        "rm -rf ~/",
        "rm -rf $HOME",
        "rm -rf ..",
        "rm -rf .",
        "rm -fr /",
        "rm -fr ~",
        "sudo",
        "doas",
        "git push --force",
        "git push -f",
        "git push --force-with-lease",
        "git push --mirror",
        "git reset --hard",
        "git clean -fdx",
        "git clean -fd",
        "git clean -xdf",
        "git checkout -- .",
        "git checkout .",
        "git restore .",
        "mkfs",
        "chmod -R 777 /",
    ]
    .into_iter()
    .map(|p| DenyRule {
        shell_prefix: p.to_string(),
    })
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Shell lexer
// ---------------------------------------------------------------------------------------------

/// How a character of a word came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Q {
    /// Unquoted: globs and `~` apply.
    Bare,
    /// Quoted or escaped: literal.
    Quoted,
    /// Part of an expansion (`$VAR`, `${…}`, `$(…)`, `<(…)`): value unknown.
    Exp,
}

/// A command or process substitution (`$(…)`, backticks, `<(…)`, `>(…)`).
#[derive(Debug, Clone)]
struct Sub {
    script: Script,
}

/// One shell word after quote removal; expansions are kept as written (`$HOME`, `$(pwd)`).
#[derive(Debug, Clone, Default)]
struct Word {
    text: String,
    /// One entry per char of `text`.
    q: Vec<Q>,
    subs: Vec<Sub>,
    /// Had quotes (so an empty text is still a word: `""`).
    quoted: bool,
}

impl Word {
    fn push(&mut self, c: char, q: Q) {
        self.text.push(c);
        self.q.push(q);
    }

    fn push_str(&mut self, s: &str, q: Q) {
        for c in s.chars() {
            self.push(c, q);
        }
    }

    fn chars(&self) -> impl Iterator<Item = (char, Q)> + '_ {
        self.text.chars().zip(self.q.iter().copied())
    }

    fn any_quoted(&self) -> bool {
        self.quoted || self.q.contains(&Q::Quoted)
    }

    fn all_bare(&self) -> bool {
        self.q.iter().all(|q| *q == Q::Bare)
    }

    /// `NAME=value` / `NAME+=value` with an unquoted name.
    fn is_assignment(&self) -> bool {
        // Every char before `=` is checked to be ASCII, so char and byte indices agree.
        for (i, (c, q)) in self.chars().enumerate() {
            if q != Q::Bare {
                return false;
            }
            if c == '=' {
                return i > 0;
            }
            if c == '+' {
                return i > 0 && self.text.get(i..).is_some_and(|t| t.starts_with("+="));
            }
            let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
            if !ok {
                return false;
            }
        }
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RedirOp {
    /// `<`
    In,
    /// `>`, `>|`, `&>`, `&>>`, `>>`, `<>`
    Out,
    /// `>&`, `<&`
    Dup,
    /// `<<`, `<<-`
    Heredoc { strip: bool },
    /// `<<<`
    HereString,
}

#[derive(Debug, Clone)]
struct Redir {
    op: RedirOp,
    target: Word,
}

#[derive(Debug, Clone)]
enum Stdin {
    Heredoc { body: String, expand: bool },
    HereString(Word),
}

/// A simple command.
#[derive(Debug, Clone, Default)]
struct Cmd {
    words: Vec<Word>,
    redirs: Vec<Redir>,
    stdin: Vec<Stdin>,
}

impl Cmd {
    fn is_empty(&self) -> bool {
        self.words.is_empty() && self.redirs.is_empty() && self.stdin.is_empty()
    }

    /// Every word the shell expands for this command (arguments, redirection targets,
    /// here-strings).
    fn all_words(&self) -> impl Iterator<Item = &Word> {
        self.words
            .iter()
            .chain(self.redirs.iter().map(|r| &r.target))
            .chain(self.stdin.iter().filter_map(|s| match s {
                Stdin::HereString(w) => Some(w),
                Stdin::Heredoc { .. } => None,
            }))
    }
}

/// Commands connected by `|`.
type Pipeline = Vec<Cmd>;

#[derive(Debug, Clone, Default)]
struct Script {
    pipelines: Vec<Pipeline>,
}

struct PendingHeredoc {
    delim: String,
    strip: bool,
    expand: bool,
    pipeline: usize,
    cmd: usize,
}

#[derive(Default)]
struct Builder {
    script: Script,
    pipe: Pipeline,
    cmd: Cmd,
    word: Option<Word>,
    redir: Option<RedirOp>,
    heredocs: Vec<PendingHeredoc>,
}

impl Builder {
    fn end_word(&mut self) {
        let Some(w) = self.word.take() else {
            return;
        };
        if w.text.is_empty() && !w.quoted && w.subs.is_empty() {
            return;
        }
        match self.redir.take() {
            Some(op @ RedirOp::Heredoc { strip }) => {
                self.heredocs.push(PendingHeredoc {
                    delim: w.text.clone(),
                    strip,
                    expand: !w.any_quoted(),
                    pipeline: self.script.pipelines.len(),
                    cmd: self.pipe.len(),
                });
                self.cmd.redirs.push(Redir { op, target: w });
            }
            Some(RedirOp::HereString) => self.cmd.stdin.push(Stdin::HereString(w)),
            Some(op) => self.cmd.redirs.push(Redir { op, target: w }),
            None => self.cmd.words.push(w),
        }
    }

    fn end_cmd(&mut self) {
        self.end_word();
        if !self.cmd.is_empty() {
            self.pipe.push(std::mem::take(&mut self.cmd));
        }
    }

    fn end_pipeline(&mut self) {
        self.end_cmd();
        if !self.pipe.is_empty() {
            self.script.pipelines.push(std::mem::take(&mut self.pipe));
        }
    }

    fn finish(mut self) -> Script {
        self.end_pipeline();
        self.script
    }
}

struct Lexer {
    s: Vec<char>,
    pos: usize,
    depth: usize,
    too_deep: bool,
    /// The unquoted characters seen (quoted text replaced by `\u{1}`), for the fork-bomb check.
    skel: String,
}

impl Lexer {
    fn new(src: &str, depth: usize) -> Lexer {
        Lexer {
            s: src.chars().collect(),
            pos: 0,
            depth,
            too_deep: depth > MAX_DEPTH,
            skel: String::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.s.get(self.pos + k).copied()
    }

    fn slice(&self, from: usize, to: usize) -> String {
        self.s
            .get(from..to.min(self.s.len()))
            .map(|c| c.iter().collect())
            .unwrap_or_default()
    }

    /// Parse until the end, or (in a substitution) until the `)` that closes it.
    fn script(&mut self, in_sub: bool) -> Script {
        let mut b = Builder::default();
        let mut parens = 0usize;
        while let Some(c) = self.peek() {
            self.skel.push(c);
            match c {
                ' ' | '\t' | '\r' => {
                    b.end_word();
                    self.pos += 1;
                }
                '\n' => {
                    b.end_pipeline();
                    self.pos += 1;
                    self.read_heredocs(&mut b);
                }
                ';' => {
                    b.end_pipeline();
                    self.pos += 1;
                }
                '&' => match self.peek_at(1) {
                    Some('&') => {
                        b.end_pipeline();
                        self.pos += 2;
                    }
                    Some('>') => {
                        b.end_word();
                        self.pos += if self.peek_at(2) == Some('>') { 3 } else { 2 };
                        b.redir = Some(RedirOp::Out);
                    }
                    _ => {
                        b.end_pipeline();
                        self.pos += 1;
                    }
                },
                '|' => match self.peek_at(1) {
                    Some('|') => {
                        b.end_pipeline();
                        self.pos += 2;
                    }
                    Some('&') => {
                        b.end_cmd();
                        self.pos += 2;
                    }
                    _ => {
                        b.end_cmd();
                        self.pos += 1;
                    }
                },
                '(' => {
                    b.end_cmd();
                    parens += 1;
                    self.pos += 1;
                }
                ')' => {
                    self.pos += 1;
                    if parens == 0 && in_sub {
                        return b.finish();
                    }
                    parens = parens.saturating_sub(1);
                    b.end_cmd();
                }
                '<' | '>' => self.redirect(&mut b, c),
                '#' if b.word.is_none() => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => {
                    let w = b.word.get_or_insert_with(Word::default);
                    self.word_part(w);
                }
            }
        }
        b.finish()
    }

    /// One unquoted character, escape, quoted string or expansion of a word.
    fn word_part(&mut self, w: &mut Word) {
        let Some(c) = self.peek() else {
            return;
        };
        match c {
            '\\' => match self.peek_at(1) {
                Some('\n') => self.pos += 2,
                Some(n) => {
                    w.push(n, Q::Quoted);
                    self.skel.push('\u{1}');
                    self.pos += 2;
                }
                None => {
                    w.push('\\', Q::Bare);
                    self.pos += 1;
                }
            },
            '\'' => {
                self.pos += 1;
                w.quoted = true;
                self.skel.push('\u{1}');
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    if c == '\'' {
                        break;
                    }
                    w.push(c, Q::Quoted);
                }
            }
            '"' => {
                self.pos += 1;
                w.quoted = true;
                self.skel.push('\u{1}');
                self.dquote(w, Some('"'));
            }
            '$' => self.dollar(w, false),
            '`' => self.backtick(w),
            _ => {
                w.push(c, Q::Bare);
                self.pos += 1;
            }
        }
    }

    /// Double-quoted text up to `term` (or the end): only `$`, backticks and `\` are special.
    fn dquote(&mut self, w: &mut Word, term: Option<char>) {
        while let Some(c) = self.peek() {
            if Some(c) == term {
                self.pos += 1;
                return;
            }
            match c {
                '\\' => match self.peek_at(1) {
                    Some(n @ ('$' | '`' | '"' | '\\')) => {
                        w.push(n, Q::Quoted);
                        self.pos += 2;
                    }
                    Some('\n') => self.pos += 2,
                    Some(n) => {
                        w.push('\\', Q::Quoted);
                        w.push(n, Q::Quoted);
                        self.pos += 2;
                    }
                    None => {
                        w.push('\\', Q::Quoted);
                        self.pos += 1;
                    }
                },
                '$' => self.dollar(w, true),
                '`' => self.backtick(w),
                _ => {
                    w.push(c, Q::Quoted);
                    self.pos += 1;
                }
            }
        }
    }

    fn dollar(&mut self, w: &mut Word, in_dq: bool) {
        match self.peek_at(1) {
            Some('\'') if !in_dq => {
                self.pos += 2;
                w.quoted = true;
                self.skel.push('\u{1}');
                self.ansi_c(w);
            }
            Some('"') if !in_dq => {
                self.pos += 2;
                w.quoted = true;
                self.skel.push('\u{1}');
                self.dquote(w, Some('"'));
            }
            Some('(') => {
                self.pos += 2;
                let (script, raw) = self.sub_script();
                w.push('$', Q::Exp);
                w.push('(', Q::Exp);
                w.push_str(&raw, Q::Exp);
                w.push(')', Q::Exp);
                w.subs.push(Sub { script });
            }
            Some('{') => {
                let start = self.pos;
                self.pos += 2;
                self.skip_balanced('{', '}');
                let raw = self.slice(start, self.pos);
                w.push_str(&raw, Q::Exp);
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                w.push('$', Q::Exp);
                self.pos += 1;
                while let Some(c) = self.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '_') {
                        break;
                    }
                    w.push(c, Q::Exp);
                    self.pos += 1;
                }
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                w.push('$', Q::Exp);
                w.push(c, Q::Exp);
                self.pos += 2;
            }
            _ => {
                w.push('$', if in_dq { Q::Quoted } else { Q::Bare });
                self.pos += 1;
            }
        }
    }

    /// `$'…'` with its C escapes.
    fn ansi_c(&mut self, w: &mut Word) {
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '\'' => return,
                '\\' => {
                    let Some(e) = self.peek() else {
                        w.push('\\', Q::Quoted);
                        return;
                    };
                    self.pos += 1;
                    let out = match e {
                        'n' => Some('\n'),
                        't' => Some('\t'),
                        'r' => Some('\r'),
                        'a' => Some('\u{7}'),
                        'b' => Some('\u{8}'),
                        'e' | 'E' => Some('\u{1b}'),
                        'f' => Some('\u{c}'),
                        'v' => Some('\u{b}'),
                        'x' => self.radix_char(16, 2),
                        'u' => self.radix_char(16, 4),
                        'U' => self.radix_char(16, 8),
                        '0'..='7' => {
                            self.pos -= 1;
                            self.radix_char(8, 3)
                        }
                        other => Some(other),
                    };
                    if let Some(o) = out {
                        w.push(o, Q::Quoted);
                    }
                }
                _ => w.push(c, Q::Quoted),
            }
        }
    }

    fn radix_char(&mut self, radix: u32, max: usize) -> Option<char> {
        let mut value = 0u32;
        let mut n = 0;
        while n < max {
            let Some(d) = self.peek().and_then(|c| c.to_digit(radix)) else {
                break;
            };
            value = value.saturating_mul(radix).saturating_add(d);
            self.pos += 1;
            n += 1;
        }
        if n == 0 {
            None
        } else {
            char::from_u32(value)
        }
    }

    /// After `$(` or `<(`: the nested script up to its `)`, and its text.
    fn sub_script(&mut self) -> (Script, String) {
        let start = self.pos;
        let script = if self.depth + 1 > MAX_DEPTH {
            self.too_deep = true;
            self.skip_balanced('(', ')');
            Script::default()
        } else {
            self.depth += 1;
            let s = self.script(true);
            self.depth -= 1;
            s
        };
        let end = self.pos;
        let raw_end = if end > start && self.s.get(end - 1) == Some(&')') {
            end - 1
        } else {
            end
        };
        (script, self.slice(start, raw_end))
    }

    /// Skip past the `close` that balances an `open` already consumed (or to the end).
    fn skip_balanced(&mut self, open: char, close: char) {
        let mut depth = 1usize;
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
        }
    }

    fn backtick(&mut self, w: &mut Word) {
        self.pos += 1;
        let mut inner = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '`' => break,
                '\\' => match self.peek() {
                    Some(n @ ('`' | '\\' | '$')) => {
                        inner.push(n);
                        self.pos += 1;
                    }
                    _ => inner.push('\\'),
                },
                _ => inner.push(c),
            }
        }
        let script = if self.depth + 1 > MAX_DEPTH {
            self.too_deep = true;
            Script::default()
        } else {
            let mut lx = Lexer::new(&inner, self.depth + 1);
            let s = lx.script(false);
            self.too_deep |= lx.too_deep;
            self.skel.push_str(&lx.skel);
            s
        };
        w.push_str("$(", Q::Exp);
        w.push_str(&inner, Q::Exp);
        w.push(')', Q::Exp);
        w.subs.push(Sub { script });
    }

    fn redirect(&mut self, b: &mut Builder, c: char) {
        if self.peek_at(1) == Some('(') {
            // Process substitution: part of a word.
            self.pos += 2;
            let (script, raw) = self.sub_script();
            let w = b.word.get_or_insert_with(Word::default);
            w.push(c, Q::Exp);
            w.push('(', Q::Exp);
            w.push_str(&raw, Q::Exp);
            w.push(')', Q::Exp);
            w.subs.push(Sub { script });
            return;
        }
        // A word of digits right before the operator is a file descriptor (`2>`).
        let fd = b.word.as_ref().is_some_and(|w| {
            !w.text.is_empty() && w.all_bare() && w.text.chars().all(|c| c.is_ascii_digit())
        });
        if fd {
            b.word = None;
        } else {
            b.end_word();
        }
        let op = if c == '<' {
            match (self.peek_at(1), self.peek_at(2)) {
                (Some('<'), Some('<')) => {
                    self.pos += 3;
                    RedirOp::HereString
                }
                (Some('<'), Some('-')) => {
                    self.pos += 3;
                    RedirOp::Heredoc { strip: true }
                }
                (Some('<'), _) => {
                    self.pos += 2;
                    RedirOp::Heredoc { strip: false }
                }
                (Some('&'), _) => {
                    self.pos += 2;
                    RedirOp::Dup
                }
                (Some('>'), _) => {
                    self.pos += 2;
                    RedirOp::Out
                }
                _ => {
                    self.pos += 1;
                    RedirOp::In
                }
            }
        } else {
            match self.peek_at(1) {
                Some('&') => {
                    self.pos += 2;
                    RedirOp::Dup
                }
                Some('>' | '|') => {
                    self.pos += 2;
                    RedirOp::Out
                }
                _ => {
                    self.pos += 1;
                    RedirOp::Out
                }
            }
        };
        b.redir = Some(op);
    }

    /// After a newline: the bodies of the here-documents opened on that line.
    fn read_heredocs(&mut self, b: &mut Builder) {
        for h in std::mem::take(&mut b.heredocs) {
            let mut body = String::new();
            while self.pos < self.s.len() {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
                let line = self.slice(start, self.pos);
                if self.pos < self.s.len() {
                    self.pos += 1;
                }
                let cmp = if h.strip {
                    line.trim_start_matches('\t')
                } else {
                    line.as_str()
                };
                if cmp.trim_end_matches('\r') == h.delim {
                    break;
                }
                body.push_str(&line);
                body.push('\n');
            }
            if let Some(cmd) = b
                .script
                .pipelines
                .get_mut(h.pipeline)
                .and_then(|p| p.get_mut(h.cmd))
            {
                cmd.stdin.push(Stdin::Heredoc {
                    body,
                    expand: h.expand,
                });
            }
        }
    }
}

/// Split `src` into shell words (quote removal, no expansion), as a user pattern is.
fn shell_words(src: &str) -> Option<Vec<String>> {
    let mut lx = Lexer::new(src, 0);
    let script = lx.script(false);
    let [pipeline] = script.pipelines.as_slice() else {
        return None;
    };
    let [cmd] = pipeline.as_slice() else {
        return None;
    };
    if !cmd.redirs.is_empty() || cmd.words.is_empty() {
        return None;
    }
    Some(cmd.words.iter().map(|w| w.text.clone()).collect())
}

/// `name(){ name|name& };name` in the unquoted text of a script.
fn is_fork_bomb(skel: &str) -> bool {
    let s: String = skel.chars().filter(|c| !c.is_whitespace()).collect();
    let mut from = 0;
    while let Some(i) = s.get(from..).and_then(|t| t.find("(){")) {
        let at = from + i;
        let name: String = {
            let mut rev: Vec<char> = s[..at]
                .chars()
                .rev()
                .take_while(|c| c.is_alphanumeric() || "_:.-".contains(*c))
                .collect();
            rev.reverse();
            rev.into_iter().collect()
        };
        if !name.is_empty() && s[at + 3..].starts_with(&format!("{name}|{name}&")) {
            return true;
        }
        from = at + 3;
    }
    false
}

/// Quote for POSIX sh where needed (to rebuild a command from an argv array).
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// An expansion that names the project root.
const TOPLEVEL: &str = "$(git rev-parse --show-toplevel)";

/// Top-level directories whose recursive deletion is as bad as deleting `/`.
const SYSTEM_DIRS: &[&str] = &[
    "bin",
    "boot",
    "dev",
    "etc",
    "home",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "media",
    "mnt",
    "opt",
    "proc",
    "root",
    "run",
    "sbin",
    "snap",
    "srv",
    "sys",
    "usr",
    "var",
    "nix",
    "Users",
    "System",
    "Library",
    "Applications",
    "private",
    "Volumes",
];

/// Devices that are fine to write to.
fn is_safe_device(path: &str) -> bool {
    let Some(dev) = path.strip_prefix("/dev/") else {
        return true;
    };
    matches!(
        dev,
        "null"
            | "zero"
            | "full"
            | "random"
            | "urandom"
            | "stdin"
            | "stdout"
            | "stderr"
            | "tty"
            | "console"
            | "ptmx"
    ) || ["fd/", "pts/", "shm/", "tcp/", "udp/", "mqueue/"]
        .iter()
        .any(|p| dev.starts_with(p))
}

/// Lexically normalised components of an absolute or relative path (`.` dropped, `..`
/// applied; `None` if `..` climbs above the start of a relative path).
fn norm_components(path: &Path) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                if out.pop().is_none() && !path.is_absolute() {
                    return None;
                }
            }
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
        }
    }
    Some(out)
}

/// `path` relative to `project_root` (both normalised lexically): an absolute path must be
/// inside the root, a relative one is taken as relative to it. `None` outside the root and for
/// the root itself.
pub fn relative_to_root(path: &str, project_root: &Path) -> Option<String> {
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        let root = norm_components(project_root)?;
        let comps = norm_components(p)?;
        comps.strip_prefix(root.as_slice())?.to_vec()
    } else {
        norm_components(p)?
    };
    if rel.is_empty() {
        None
    } else {
        Some(rel.join("/"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Loc {
    Abs(Vec<String>),
    /// Relative to a home directory ralph does not know.
    Home(Vec<String>),
    /// Another user's home, or above a home.
    OtherHome,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GlobKind {
    None,
    /// The last component is `*` (everything in the directory).
    All,
    /// The last component is a glob starting with `.` (`.*`, `.??*`): hidden entries.
    Hidden,
    /// Another glob (`*.o`): a subset.
    Other,
}

#[derive(Debug, Clone)]
struct Target {
    loc: Loc,
    glob: GlobKind,
    /// Written from `~` or `$HOME`.
    via_home: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Danger {
    Root,
    Home,
    Parent,
    Project,
    Git,
    Ralph,
}

impl Danger {
    fn rm_rule(self) -> &'static str {
        match self {
            Danger::Root => "rm-rf-root",
            Danger::Home => "rm-rf-home",
            Danger::Parent => "rm-rf-parent",
            Danger::Project => "rm-rf-project",
            Danger::Git => "rm-rf-git",
            Danger::Ralph => "rm-rf-ralph",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Command guard
// ---------------------------------------------------------------------------------------------

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
}

impl CommandGuard {
    /// The built-in rules plus `extra` (see the module docs for the pattern syntax).
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
        Ok(CommandGuard { user, home: None })
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

    /// Check one shell command as the agent sent it, run from `project_root`.
    pub fn check(&self, command: &str, project_root: &Path) -> Option<Blocked> {
        self.analyzer(project_root, None).check_command(command)
    }

    fn analyzer<'g>(&'g self, project_root: &Path, paths: Option<&'g PathGuard>) -> Analyzer<'g> {
        let root = norm_components(project_root).unwrap_or_default();
        let home = self.home.clone().or_else(|| guess_home(&root));
        Analyzer {
            guard: self,
            paths,
            root,
            home,
        }
    }

    fn user_match(&self, words: &[Word]) -> Option<Blocked> {
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

    fn user_regex_raw(&self, text: &str) -> Option<Blocked> {
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

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// The program a word names: its base name (`/usr/bin/git` → `git`).
fn prog_name(w: &Word) -> String {
    match w.text.as_str() {
        "$SHELL" | "${SHELL}" => "sh".to_string(),
        t => basename(t).to_string(),
    }
}

fn excerpt(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= EXCERPT_MAX {
        one
    } else {
        let cut: String = one.chars().take(EXCERPT_MAX).collect();
        format!("{cut}…")
    }
}

fn words_text(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn block(rule: &str, words: &[Word]) -> Blocked {
    Blocked {
        rule: rule.to_string(),
        reason: format!("`{}` {}", excerpt(&words_text(words)), description(rule)),
    }
}

const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "yash", "posh",
    "rbash", "pdksh", "oksh", "loksh",
];

const DOWNLOADERS: &[&str] = &[
    "curl", "wget", "fetch", "aria2c", "http", "https", "xh", "curlie", "wget2",
];

const PRIVILEGE: &[&str] = &["sudo", "doas", "su", "pkexec", "run0"];

fn is_interpreter(prog: &str) -> bool {
    prog.starts_with("python")
        || matches!(
            prog,
            "perl" | "ruby" | "node" | "nodejs" | "php" | "pypy" | "pypy3" | "bun" | "deno"
        )
}

fn is_mkfs(prog: &str) -> bool {
    prog == "mkfs"
        || prog.starts_with("mkfs.")
        || matches!(prog, "mke2fs" | "mkswap" | "wipefs" | "mkdosfs" | "mkntfs")
}

/// Shell keywords that may precede a command.
const PREFIX_KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "while", "until", "do", "!", "{", "}", "time", "coproc",
];

/// The index of the first operand: options (`-x`, `--long`, and those in `with_value` together
/// with their value) skipped; after `--` the next word.
fn skip_opts(args: &[Word], with_value: &[&str]) -> usize {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        if t == "--" {
            return i + 1;
        }
        if t.starts_with('-') && t.len() > 1 {
            i += if with_value.contains(&t) { 2 } else { 1 };
        } else {
            return i;
        }
    }
    i
}

/// What a simple command runs once prefixes are stripped.
enum Inv<'a> {
    Exec(&'a [Word]),
    /// A command line to parse again (`env -S`, `watch`, `flock -c`).
    Script(String),
    Nothing,
}

/// The current directory as far as ralph can tell.
#[derive(Debug, Clone)]
enum Cwd {
    Abs(Vec<String>),
    Home(Vec<String>),
    Unknown,
}

/// Where the stdin of a command in a pipeline comes from.
#[derive(Default, Clone)]
struct Upstream {
    /// A download (`curl …`) feeds this command.
    download: bool,
    /// Literal text from `echo`/`printf` feeds it.
    text: Option<String>,
}

struct Analyzer<'g> {
    guard: &'g CommandGuard,
    paths: Option<&'g PathGuard>,
    root: Vec<String>,
    home: Option<Vec<String>>,
}

macro_rules! found {
    ($e:expr) => {
        if let Some(b) = $e {
            return Some(b);
        }
    };
}

impl Analyzer<'_> {
    fn check_command(&self, command: &str) -> Option<Blocked> {
        let mut cwd = Cwd::Abs(self.root.clone());
        self.check_source(command, &mut cwd, 0)
    }

    fn nesting_limit(&self, text: &str) -> Blocked {
        Blocked {
            rule: "nesting-limit".to_string(),
            reason: format!("`{}` {}", excerpt(text), description("nesting-limit")),
        }
    }

    /// Check a script given as text.
    fn check_source(&self, text: &str, cwd: &mut Cwd, depth: usize) -> Option<Blocked> {
        if depth > MAX_DEPTH {
            return Some(self.nesting_limit(text));
        }
        found!(self.guard.user_regex_raw(text));
        let mut lx = Lexer::new(text, depth);
        let script = lx.script(false);
        if lx.too_deep {
            return Some(self.nesting_limit(text));
        }
        if is_fork_bomb(&lx.skel) {
            return Some(Blocked {
                rule: "fork-bomb".to_string(),
                reason: format!("`{}` {}", excerpt(text), description("fork-bomb")),
            });
        }
        self.check_script(&script, cwd, depth)
    }

    fn check_script(&self, script: &Script, cwd: &mut Cwd, depth: usize) -> Option<Blocked> {
        if depth > MAX_DEPTH {
            return Some(self.nesting_limit(""));
        }
        for pipeline in &script.pipelines {
            let mut up = Upstream::default();
            let single = pipeline.len() == 1;
            for cmd in pipeline {
                if single {
                    found!(self.check_cmd(cmd, cwd, depth, &up));
                } else {
                    // Each part of a pipeline runs in a subshell: a `cd` there does not last.
                    found!(self.check_cmd(cmd, &mut cwd.clone(), depth, &up));
                }
                up = Upstream {
                    download: up.download || self.cmd_downloads(cmd, depth),
                    text: self.literal_output(cmd),
                };
            }
        }
        None
    }

    fn check_cmd(&self, cmd: &Cmd, cwd: &mut Cwd, depth: usize, up: &Upstream) -> Option<Blocked> {
        if depth > MAX_DEPTH {
            return Some(self.nesting_limit(&words_text(&cmd.words)));
        }
        // Substitutions run first, in a subshell.
        for w in cmd.all_words() {
            for sub in &w.subs {
                found!(self.check_script(&sub.script, &mut cwd.clone(), depth + 1));
            }
        }
        for s in &cmd.stdin {
            if let Stdin::Heredoc { body, expand: true } = s {
                found!(self.check_expansions(body, cwd, depth));
            }
        }
        for r in &cmd.redirs {
            if r.op == RedirOp::Out {
                found!(self.check_write(&r.target, cwd, &cmd.words));
            }
        }
        let inv = match self.unwrap(&cmd.words, true) {
            Ok(inv) => inv,
            Err(b) => return Some(b),
        };
        match inv {
            Inv::Nothing => None,
            Inv::Script(s) => self.check_source(&s, &mut cwd.clone(), depth + 1),
            Inv::Exec(words) => self.check_exec(words, cmd, cwd, depth, up),
        }
    }

    /// The substitutions in an unquoted here-document body run even if nothing reads it.
    fn check_expansions(&self, body: &str, cwd: &Cwd, depth: usize) -> Option<Blocked> {
        if depth + 1 > MAX_DEPTH {
            return Some(self.nesting_limit(body));
        }
        let mut lx = Lexer::new(body, depth + 1);
        let mut w = Word::default();
        lx.dquote(&mut w, None);
        if lx.too_deep {
            return Some(self.nesting_limit(body));
        }
        for sub in &w.subs {
            found!(self.check_script(&sub.script, &mut cwd.clone(), depth + 1));
        }
        None
    }

    /// Strip assignments, keywords and prefix commands (`env`, `nohup`, `xargs`, …). Each level
    /// is also checked against the user's rules.
    fn unwrap<'a>(&self, words: &'a [Word], user: bool) -> Result<Inv<'a>, Blocked> {
        let mut words = words;
        for _ in 0..MAX_UNWRAP {
            while let Some(first) = words.first() {
                let keyword = first.all_bare() && PREFIX_KEYWORDS.contains(&first.text.as_str());
                if keyword || first.is_assignment() {
                    words = &words[1..];
                } else {
                    break;
                }
            }
            let Some(first) = words.first() else {
                return Ok(Inv::Nothing);
            };
            if user {
                if let Some(b) = self.guard.user_match(words) {
                    return Err(b);
                }
            }
            let prog = prog_name(first);
            let args = &words[1..];
            let rest = |i: usize| args.get(i..).unwrap_or(&[]);
            words = match prog.as_str() {
                "for" | "select" | "case" | "[[" | "[" | "test" | "fi" | "done" | "esac" | "]]" => {
                    return Ok(Inv::Nothing)
                }
                "function" => rest(1),
                "env" => match env_operand(args) {
                    EnvOperand::Cmd(i) => rest(i),
                    EnvOperand::Split(s) => return Ok(Inv::Script(s)),
                    EnvOperand::None => return Ok(Inv::Nothing),
                },
                "command" => {
                    let i = skip_opts(args, &[]);
                    if args[..i.min(args.len())]
                        .iter()
                        .any(|a| a.text.starts_with('-') && a.text.contains(['v', 'V']))
                    {
                        return Ok(Inv::Nothing);
                    }
                    rest(i)
                }
                "builtin" | "nohup" | "unbuffer" | "setsid" | "busybox" => {
                    rest(skip_opts(args, &[]))
                }
                "exec" => rest(skip_opts(args, &["-a"])),
                "time" => rest(skip_opts(args, &["-f", "--format", "-o", "--output"])),
                "nice" => rest(skip_opts(args, &["-n", "--adjustment"])),
                "ionice" => rest(skip_opts(args, &["-c", "-n", "--class", "--classdata"])),
                "stdbuf" => rest(skip_opts(args, &["-i", "-o", "-e"])),
                "timeout" => rest(skip_opts(args, &["-s", "-k", "--signal", "--kill-after"]) + 1),
                "taskset" | "chrt" => rest(skip_opts(args, &[]) + 1),
                "xargs" => rest(skip_opts(
                    args,
                    &[
                        "-I",
                        "-L",
                        "-n",
                        "-P",
                        "-s",
                        "-d",
                        "-E",
                        "-a",
                        "--max-args",
                        "--max-procs",
                        "--delimiter",
                        "--arg-file",
                        "--eof",
                        "--replace",
                        "--max-lines",
                        "--max-chars",
                    ],
                )),
                "watch" => {
                    let i = skip_opts(args, &["-n", "--interval", "-q", "--equexit"]);
                    return Ok(Inv::Script(words_text(rest(i))));
                }
                "flock" => {
                    let i = skip_opts(args, &["-w", "-E", "--timeout", "--conflict-exit-code"]);
                    match args.get(i + 1).map(|w| w.text.as_str()) {
                        Some("-c" | "--command") => {
                            return Ok(args
                                .get(i + 2)
                                .map_or(Inv::Nothing, |w| Inv::Script(w.text.clone())))
                        }
                        _ => rest(i + 1),
                    }
                }
                _ => return Ok(Inv::Exec(words)),
            };
        }
        Ok(Inv::Nothing)
    }

    fn check_exec(
        &self,
        words: &[Word],
        cmd: &Cmd,
        cwd: &mut Cwd,
        depth: usize,
        up: &Upstream,
    ) -> Option<Blocked> {
        let first = words.first()?;
        let prog = prog_name(first);
        let args = &words[1..];
        match prog.as_str() {
            p if PRIVILEGE.contains(&p) => Some(block("sudo", words)),
            "cd" | "pushd" => {
                *cwd = self.cd(args, cwd);
                None
            }
            "rm" => self.rm(words, cwd),
            "git" => self.git(words, cwd),
            "chmod" | "chown" | "chgrp" => self.chmod(words, cwd),
            "dd" => args
                .iter()
                .filter_map(|a| a.text.strip_prefix("of="))
                .any(|of| !is_safe_device(of))
                .then(|| block("write-device", words)),
            p if is_mkfs(p) => Some(block("mkfs", words)),
            "find" => self.find(words, cwd, depth),
            "tee" => {
                for a in args.iter().filter(|a| !a.text.starts_with('-')) {
                    found!(self.check_write(a, cwd, words));
                }
                None
            }
            "eval" => {
                if args.iter().any(|a| self.word_downloads(a, depth)) {
                    return Some(block("curl-pipe-shell", words));
                }
                self.check_source(&words_text(args), cwd, depth + 1)
            }
            "source" | "." => {
                let file = args.first();
                if file.is_some_and(|f| self.word_downloads(f, depth)) {
                    return Some(block("curl-pipe-shell", words));
                }
                let stdin = file.is_none_or(|f| is_stdin_path(&f.text));
                if stdin && up.download {
                    return Some(block("curl-pipe-shell", words));
                }
                None
            }
            p if SHELLS.contains(&p) => self.shell(words, cmd, cwd, depth, up),
            p if is_interpreter(p) => self.interpreter(words, cmd, depth, up),
            _ => None,
        }
    }

    fn shell(
        &self,
        words: &[Word],
        cmd: &Cmd,
        cwd: &Cwd,
        depth: usize,
        up: &Upstream,
    ) -> Option<Blocked> {
        let args = &words[1..];
        let sa = shell_args(args);
        if sa.has_c {
            let script = sa.operand?;
            if self.word_downloads(script, depth) {
                return Some(block("curl-pipe-shell", words));
            }
            return self.check_source(&script.text, &mut cwd.clone(), depth + 1);
        }
        if let Some(file) = sa.operand {
            if self.word_downloads(file, depth) {
                return Some(block("curl-pipe-shell", words));
            }
        }
        let from_stdin = sa.stdin_flag || sa.operand.is_none_or(|f| is_stdin_path(&f.text));
        if !from_stdin {
            return None;
        }
        self.stdin_script(words, cmd, cwd, depth, up)
    }

    /// A shell or interpreter reading its program from stdin.
    fn stdin_script(
        &self,
        words: &[Word],
        cmd: &Cmd,
        cwd: &Cwd,
        depth: usize,
        up: &Upstream,
    ) -> Option<Blocked> {
        if up.download {
            return Some(block("curl-pipe-shell", words));
        }
        for r in &cmd.redirs {
            if r.op == RedirOp::In && self.word_downloads(&r.target, depth) {
                return Some(block("curl-pipe-shell", words));
            }
        }
        let is_shell = words
            .first()
            .is_some_and(|w| SHELLS.contains(&prog_name(w).as_str()));
        for s in &cmd.stdin {
            match s {
                Stdin::HereString(w) => {
                    if self.word_downloads(w, depth) {
                        return Some(block("curl-pipe-shell", words));
                    }
                    if is_shell {
                        found!(self.check_source(&w.text, &mut cwd.clone(), depth + 1));
                    }
                }
                Stdin::Heredoc { body, .. } => {
                    if is_shell {
                        found!(self.check_source(body, &mut cwd.clone(), depth + 1));
                    }
                }
            }
        }
        if is_shell {
            if let Some(text) = &up.text {
                found!(self.check_source(text, &mut cwd.clone(), depth + 1));
            }
        }
        None
    }

    fn interpreter(
        &self,
        words: &[Word],
        cmd: &Cmd,
        depth: usize,
        up: &Upstream,
    ) -> Option<Blocked> {
        let args = &words[1..];
        let inline = args.iter().any(|a| {
            matches!(
                a.text.as_str(),
                "-c" | "-e" | "-E" | "-m" | "-p" | "-r" | "--eval" | "--print"
            )
        });
        let operand = args
            .iter()
            .find(|a| !a.text.starts_with('-') || a.text == "-");
        if operand.is_some_and(|o| self.word_downloads(o, depth)) {
            return Some(block("curl-pipe-shell", words));
        }
        if inline || operand.is_some_and(|o| !is_stdin_path(&o.text)) {
            return None;
        }
        self.stdin_script(words, cmd, &Cwd::Unknown, depth, up)
    }

    /// Whether running `cmd` downloads something (its output may feed a shell).
    fn cmd_downloads(&self, cmd: &Cmd, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        if cmd.all_words().any(|w| self.word_downloads(w, depth)) {
            return true;
        }
        match self.unwrap(&cmd.words, false) {
            Ok(Inv::Exec(words)) => {
                let Some(first) = words.first() else {
                    return false;
                };
                let prog = prog_name(first);
                if DOWNLOADERS.contains(&prog.as_str()) {
                    return true;
                }
                if SHELLS.contains(&prog.as_str()) {
                    let sa = shell_args(&words[1..]);
                    if let (true, Some(s)) = (sa.has_c, sa.operand) {
                        return self.text_downloads(&s.text, depth + 1);
                    }
                }
                false
            }
            Ok(Inv::Script(s)) => self.text_downloads(&s, depth + 1),
            _ => false,
        }
    }

    fn text_downloads(&self, text: &str, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        let mut lx = Lexer::new(text, depth);
        let script = lx.script(false);
        self.script_downloads(&script, depth)
    }

    fn script_downloads(&self, script: &Script, depth: usize) -> bool {
        script
            .pipelines
            .iter()
            .flatten()
            .any(|c| self.cmd_downloads(c, depth + 1))
    }

    fn word_downloads(&self, w: &Word, depth: usize) -> bool {
        w.subs
            .iter()
            .any(|s| self.script_downloads(&s.script, depth + 1))
    }

    /// What `echo`/`printf` with literal arguments print, to check what a shell reads from them.
    fn literal_output(&self, cmd: &Cmd) -> Option<String> {
        let Ok(Inv::Exec(words)) = self.unwrap(&cmd.words, false) else {
            return None;
        };
        let prog = prog_name(words.first()?);
        let args = &words[1..];
        match prog.as_str() {
            "echo" => {
                let i = args
                    .iter()
                    .position(|a| !matches!(a.text.as_str(), "-n" | "-e" | "-E" | "-ne" | "-en"))
                    .unwrap_or(args.len());
                Some(words_text(&args[i..]).replace("\\n", "\n"))
            }
            "printf" => {
                let rest = if args.first().is_some_and(|a| a.text == "--") {
                    &args[1..]
                } else {
                    args
                };
                Some(words_text(rest).replace("\\n", "\n"))
            }
            _ => None,
        }
    }

    /// Resolve a path word against the current directory.
    fn resolve(&self, w: &Word, cwd: &Cwd) -> Target {
        let unknown = Target {
            loc: Loc::Unknown,
            glob: GlobKind::None,
            via_home: false,
        };
        let chars: Vec<(char, Q)> = w.chars().collect();
        let text = w.text.as_str();
        let exp_prefix = |p: &str| -> bool {
            text.starts_with(p)
                && chars.first().is_some_and(|(_, q)| *q == Q::Exp)
                && matches!(text[p.len()..].chars().next(), None | Some('/'))
        };
        let home_loc = || match &self.home {
            Some(h) => Loc::Abs(h.clone()),
            None => Loc::Home(Vec::new()),
        };
        let cwd_loc = || match cwd {
            Cwd::Abs(c) => Loc::Abs(c.clone()),
            Cwd::Home(c) => Loc::Home(c.clone()),
            Cwd::Unknown => Loc::Unknown,
        };
        let (base, skip) = if chars.first() == Some(&('~', Q::Bare)) {
            let end = text.find('/').unwrap_or(text.len());
            if end == 1 {
                (home_loc(), 1)
            } else if chars[1..text[..end].chars().count()]
                .iter()
                .all(|(c, q)| *q == Q::Bare && (c.is_alphanumeric() || "_-.".contains(*c)))
            {
                let user = &text[1..end];
                if self
                    .home
                    .as_ref()
                    .and_then(|h| h.last())
                    .map(String::as_str)
                    == Some(user)
                {
                    (home_loc(), end)
                } else {
                    (Loc::OtherHome, end)
                }
            } else {
                return unknown;
            }
        } else if exp_prefix("$HOME") {
            (home_loc(), "$HOME".len())
        } else if exp_prefix("${HOME}") {
            (home_loc(), "${HOME}".len())
        } else if exp_prefix("$PWD") {
            (cwd_loc(), "$PWD".len())
        } else if exp_prefix("${PWD}") {
            (cwd_loc(), "${PWD}".len())
        } else if exp_prefix("$(pwd)") {
            (cwd_loc(), "$(pwd)".len())
        } else if exp_prefix(TOPLEVEL) {
            (Loc::Abs(self.root.clone()), TOPLEVEL.len())
        } else if text.starts_with('/') {
            (Loc::Abs(Vec::new()), 0)
        } else {
            (cwd_loc(), 0)
        };
        let via_home = skip > 0 && (text.starts_with('~') || text.contains("HOME"));
        let rest: Vec<(char, Q)> = chars[text[..skip].chars().count()..].to_vec();
        if rest.iter().any(|(_, q)| *q == Q::Exp) {
            return unknown;
        }
        let mut comps: Vec<&[(char, Q)]> = rest.split(|(c, _)| *c == '/').collect();
        // `dir/*/` is `dir/*` (directories only).
        while comps.len() > 1 && comps.last().is_some_and(|c| c.is_empty()) {
            comps.pop();
        }
        let mut loc = base;
        let mut glob = GlobKind::None;
        let n = comps.len();
        for (i, comp) in comps.into_iter().enumerate() {
            let name: String = comp.iter().map(|(c, _)| *c).collect();
            let globby = comp
                .iter()
                .any(|(c, q)| *q == Q::Bare && matches!(c, '*' | '?' | '['));
            if globby {
                if i + 1 != n {
                    return unknown;
                }
                glob = if name.chars().all(|c| c == '*') {
                    GlobKind::All
                } else if name.starts_with('.') {
                    GlobKind::Hidden
                } else {
                    GlobKind::Other
                };
                break;
            }
            if name.is_empty() || name == "." {
                continue;
            }
            loc = match loc {
                Loc::Abs(mut c) => {
                    if name == ".." {
                        c.pop();
                    } else {
                        c.push(name);
                    }
                    Loc::Abs(c)
                }
                Loc::Home(mut c) => {
                    if name == ".." {
                        if c.pop().is_none() {
                            Loc::OtherHome
                        } else {
                            Loc::Home(c)
                        }
                    } else {
                        c.push(name);
                        Loc::Home(c)
                    }
                }
                other => other,
            };
        }
        Target {
            loc,
            glob,
            via_home,
        }
    }

    /// What deleting (or recursively changing) `t` would hit.
    fn danger(&self, t: &Target) -> Option<Danger> {
        if t.glob == GlobKind::Other {
            return None;
        }
        match &t.loc {
            Loc::Unknown => None,
            Loc::OtherHome => Some(Danger::Home),
            Loc::Home(c) => c.is_empty().then_some(Danger::Home),
            Loc::Abs(c) => {
                let root = &self.root;
                let is_home = self.home.as_ref() == Some(c);
                if c.is_empty() {
                    Some(Danger::Root)
                } else if is_home && t.via_home {
                    Some(Danger::Home)
                } else if c == root {
                    Some(if t.glob == GlobKind::Hidden {
                        Danger::Git
                    } else {
                        Danger::Project
                    })
                } else if root.starts_with(c) {
                    Some(Danger::Parent)
                } else if is_home {
                    Some(Danger::Home)
                } else if c.len() == 1 && SYSTEM_DIRS.contains(&c[0].as_str()) {
                    Some(Danger::Root)
                } else if c.len() > root.len() && c.starts_with(root) {
                    match c[root.len()].as_str() {
                        ".git" => Some(Danger::Git),
                        ".ralph" => Some(Danger::Ralph),
                        _ => None,
                    }
                } else {
                    None
                }
            }
        }
    }

    fn cd(&self, args: &[Word], cwd: &Cwd) -> Cwd {
        let i = skip_opts(args, &[]);
        let Some(dir) = args.get(i) else {
            return match &self.home {
                Some(h) => Cwd::Abs(h.clone()),
                None => Cwd::Home(Vec::new()),
            };
        };
        if dir.text == "-" {
            return Cwd::Unknown;
        }
        let t = self.resolve(dir, cwd);
        if t.glob != GlobKind::None {
            return Cwd::Unknown;
        }
        match t.loc {
            Loc::Abs(c) => Cwd::Abs(c),
            Loc::Home(c) => Cwd::Home(c),
            Loc::OtherHome | Loc::Unknown => Cwd::Unknown,
        }
    }

    /// A redirection or `tee` target: devices, and protected paths when checking with a
    /// [`PathGuard`].
    fn check_write(&self, target: &Word, cwd: &Cwd, words: &[Word]) -> Option<Blocked> {
        let t = target.text.as_str();
        if t.starts_with("/dev/") && !is_safe_device(t) {
            let mut b = block("write-device", words);
            b.reason = format!("{} (writes to {t})", b.reason);
            return Some(b);
        }
        let paths = self.paths?;
        let resolved = self.resolve(target, cwd);
        let (Loc::Abs(c), GlobKind::None) = (&resolved.loc, resolved.glob) else {
            return None;
        };
        let rel = c.strip_prefix(self.root.as_slice())?;
        if rel.is_empty() {
            return None;
        }
        let rel = rel.join("/");
        paths.matches(&rel).map(|glob| protected(&rel, glob))
    }

    fn rm(&self, words: &[Word], cwd: &Cwd) -> Option<Blocked> {
        let mut recursive = false;
        let mut targets = Vec::new();
        let mut opts = true;
        for a in &words[1..] {
            let t = a.text.as_str();
            if opts && t == "--" {
                opts = false;
            } else if opts && t.starts_with("--") {
                recursive |= t == "--recursive";
            } else if opts && t.starts_with('-') && t.len() > 1 {
                recursive |= t[1..].contains(['r', 'R']);
            } else {
                targets.push(a);
            }
        }
        if !recursive {
            return None;
        }
        targets.into_iter().find_map(|t| {
            self.danger(&self.resolve(t, cwd))
                .map(|d| block(d.rm_rule(), words))
        })
    }

    fn chmod(&self, words: &[Word], cwd: &Cwd) -> Option<Blocked> {
        let args = &words[1..];
        let recursive = args.iter().any(|a| {
            a.text == "--recursive"
                || (a.text.starts_with('-') && !a.text.starts_with("--") && a.text.contains('R'))
        });
        if !recursive {
            return None;
        }
        let reference = args.iter().any(|a| a.text.starts_with("--reference"));
        let operands = args.iter().filter(|a| !a.text.starts_with('-'));
        operands.skip(if reference { 0 } else { 1 }).find_map(|t| {
            match self.danger(&self.resolve(t, cwd)) {
                Some(Danger::Root | Danger::Home | Danger::Parent) => {
                    Some(block("chmod-recursive-root", words))
                }
                _ => None,
            }
        })
    }

    fn find(&self, words: &[Word], cwd: &Cwd, depth: usize) -> Option<Blocked> {
        let args = &words[1..];
        let mut i = 0;
        // Options before the start points.
        while let Some(a) = args.get(i) {
            match a.text.as_str() {
                "-H" | "-L" | "-P" => i += 1,
                "-D" => i += 2,
                t if t.starts_with("-O") => i += 1,
                _ => break,
            }
        }
        let mut starts = Vec::new();
        while let Some(a) = args.get(i) {
            if a.text.starts_with('-') || a.text == "(" || a.text == "!" {
                break;
            }
            starts.push(a);
            i += 1;
        }
        let mut deletes = false;
        let mut filtered = false;
        while let Some(a) = args.get(i) {
            let t = a.text.as_str();
            i += 1;
            match t {
                "-delete" => deletes = true,
                "-exec" | "-execdir" | "-ok" | "-okdir" => {
                    let start = i;
                    while args.get(i).is_some_and(|a| a.text != ";" && a.text != "+") {
                        i += 1;
                    }
                    let inner = args.get(start..i).unwrap_or(&[]);
                    i += 1;
                    if let Some(first) = inner.first() {
                        if matches!(prog_name(first).as_str(), "rm" | "shred" | "unlink") {
                            deletes = true;
                        }
                        let sub = Cmd {
                            words: inner.to_vec(),
                            ..Cmd::default()
                        };
                        found!(self.check_cmd(
                            &sub,
                            &mut cwd.clone(),
                            depth + 1,
                            &Upstream::default()
                        ));
                    }
                }
                "-depth"
                | "-d"
                | "-xdev"
                | "-mount"
                | "-print"
                | "-print0"
                | "-noleaf"
                | "-daystart"
                | "-follow"
                | "-nowarn"
                | "-warn"
                | "-ignore_readdir_race"
                | "-noignore_readdir_race" => {}
                "-mindepth" | "-maxdepth" => i += 1,
                t if t.starts_with('-') || t == "(" || t == "!" || t == "-o" => filtered = true,
                _ => {}
            }
        }
        if !deletes || filtered {
            return None;
        }
        let default_start = Word {
            text: ".".to_string(),
            q: vec![Q::Bare],
            ..Word::default()
        };
        let starts = if starts.is_empty() {
            vec![&default_start]
        } else {
            starts
        };
        starts
            .into_iter()
            .find_map(|s| self.danger(&self.resolve(s, cwd)))
            .map(|d| block(d.rm_rule(), words))
    }

    fn git(&self, words: &[Word], cwd: &Cwd) -> Option<Blocked> {
        let args = &words[1..];
        let mut i = 0;
        let mut cwd = cwd.clone();
        while let Some(a) = args.get(i) {
            let t = a.text.as_str();
            match t {
                "-C" => {
                    if let Some(dir) = args.get(i + 1) {
                        cwd = self.cd(std::slice::from_ref(dir), &cwd);
                    }
                    i += 2;
                }
                "-c" | "--git-dir" | "--work-tree" | "--namespace" | "--super-prefix"
                | "--config-env" | "--list-cmds" | "--attr-source" => i += 2,
                _ if t.starts_with('-') => i += 1,
                _ => break,
            }
        }
        let sub = args.get(i)?.text.as_str();
        let rest = &args[i + 1..];
        if matches!(
            sub,
            "update-ref" | "symbolic-ref" | "branch" | "tag" | "push" | "replace" | "reflog"
        ) && rest.iter().any(|a| a.text.contains("refs/ralph"))
        {
            return Some(block("git-ralph-refs", words));
        }
        let rule = match sub {
            "push" => git_push(rest),
            "reset" => rest
                .iter()
                .any(|a| a.text == "--hard")
                .then_some("git-reset-hard"),
            "clean" => git_clean(rest),
            "checkout" => self.git_checkout(rest, &cwd),
            "restore" => self.git_restore(rest, &cwd),
            "switch" => rest
                .iter()
                .any(|a| {
                    matches!(a.text.as_str(), "-f" | "--force" | "--discard-changes")
                        || short_cluster(&a.text).is_some_and(|c| c.contains('f'))
                })
                .then_some("git-discard-changes"),
            _ => None,
        };
        rule.map(|r| block(r, words))
    }

    /// A pathspec naming the whole working tree.
    fn whole_tree(&self, w: &Word, cwd: &Cwd) -> bool {
        if matches!(
            w.text.as_str(),
            ":/" | ":/*" | ":/." | ":(top)" | ":(top)*" | ":(top)." | ":*"
        ) {
            return true;
        }
        // Git expands globs in pathspecs itself: a quoted `*` is still a glob.
        let mut unquoted = w.clone();
        for q in &mut unquoted.q {
            if *q == Q::Quoted {
                *q = Q::Bare;
            }
        }
        let t = self.resolve(&unquoted, cwd);
        matches!(&t.loc, Loc::Abs(c) if *c == self.root)
            && matches!(t.glob, GlobKind::None | GlobKind::All)
    }

    fn git_checkout(&self, args: &[Word], cwd: &Cwd) -> Option<&'static str> {
        let mut force = false;
        let mut paths = Vec::new();
        let mut opts = true;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let t = a.text.as_str();
            i += 1;
            if !opts {
                paths.push(a);
                continue;
            }
            match t {
                "--" => opts = false,
                "-f" | "--force" => force = true,
                "-b" | "-B" | "--orphan" | "--conflict" => i += 1,
                _ if t.starts_with("--") => {}
                _ => match short_cluster(t) {
                    Some(cluster) => {
                        force |= cluster.contains('f');
                        if cluster.ends_with(['b', 'B']) {
                            i += 1;
                        }
                    }
                    None => paths.push(a),
                },
            }
        }
        if force || paths.iter().any(|p| self.whole_tree(p, cwd)) {
            Some("git-discard-changes")
        } else {
            None
        }
    }

    fn git_restore(&self, args: &[Word], cwd: &Cwd) -> Option<&'static str> {
        let (mut staged, mut worktree) = (false, false);
        let mut paths = Vec::new();
        let mut opts = true;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let t = a.text.as_str();
            i += 1;
            if !opts {
                paths.push(a);
                continue;
            }
            match t {
                "--" => opts = false,
                "--staged" => staged = true,
                "--worktree" => worktree = true,
                "-s" | "--source" => i += 1,
                _ if t.starts_with("--") => {}
                _ => match short_cluster(t) {
                    Some(cluster) => {
                        staged |= cluster.contains('S');
                        worktree |= cluster.contains('W');
                        if cluster.ends_with('s') {
                            i += 1;
                        }
                    }
                    None => paths.push(a),
                },
            }
        }
        let touches_worktree = worktree || !staged;
        (touches_worktree && paths.iter().any(|p| self.whole_tree(p, cwd)))
            .then_some("git-discard-changes")
    }
}

/// The letters of a single-dash option cluster (`-fdx` → `fdx`).
fn short_cluster(t: &str) -> Option<&str> {
    t.strip_prefix('-')
        .filter(|c| !c.is_empty() && !c.starts_with('-'))
}

fn git_push(args: &[Word]) -> Option<&'static str> {
    let mut positional = Vec::new();
    let mut opts = true;
    let mut rule = None;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        i += 1;
        if !opts {
            positional.push(t);
            continue;
        }
        match t {
            "--" => opts = false,
            "--force" | "--force-with-lease" => return Some("git-push-force"),
            _ if t.starts_with("--force-with-lease=") => return Some("git-push-force"),
            "--mirror" => rule = rule.or(Some("git-push-mirror")),
            "--delete" | "--prune" => rule = rule.or(Some("git-push-delete")),
            "--repo" | "--receive-pack" | "--exec" | "--push-option" => i += 1,
            _ if t.starts_with("--") => {}
            _ => match short_cluster(t) {
                Some(cluster) => {
                    for c in cluster.chars() {
                        match c {
                            'f' => return Some("git-push-force"),
                            'd' => rule = rule.or(Some("git-push-delete")),
                            'o' => {
                                if cluster.ends_with('o') {
                                    i += 1;
                                }
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                None => positional.push(t),
            },
        }
    }
    if positional.iter().any(|p| p.starts_with('+')) {
        return Some("git-push-force");
    }
    if positional
        .iter()
        .skip(1)
        .any(|p| p.starts_with(':') && p.len() > 1)
    {
        return Some("git-push-delete");
    }
    rule
}

fn git_clean(args: &[Word]) -> Option<&'static str> {
    let (mut force, mut dirs, mut ignored, mut dry) = (false, false, false, false);
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        i += 1;
        match t {
            "--" => break,
            "--force" => force = true,
            "--dry-run" => dry = true,
            "-e" | "--exclude" => i += 1,
            _ if t.starts_with("--") => {}
            _ => {
                if let Some(cluster) = short_cluster(t) {
                    for c in cluster.chars() {
                        match c {
                            'f' => force = true,
                            'd' => dirs = true,
                            'x' | 'X' => ignored = true,
                            'n' => dry = true,
                            'e' => {
                                if cluster.ends_with('e') {
                                    i += 1;
                                }
                                break;
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    (force && (dirs || ignored) && !dry).then_some("git-clean-force")
}

fn is_stdin_path(t: &str) -> bool {
    matches!(t, "-" | "/dev/stdin" | "/dev/fd/0" | "/proc/self/fd/0")
}

struct ShellArgs<'a> {
    has_c: bool,
    stdin_flag: bool,
    /// The script (with `-c`) or the script file.
    operand: Option<&'a Word>,
}

fn shell_args(args: &[Word]) -> ShellArgs<'_> {
    let mut sa = ShellArgs {
        has_c: false,
        stdin_flag: false,
        operand: None,
    };
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        if t == "--" || t == "-" {
            sa.operand = args.get(i + 1);
            return sa;
        }
        if t.starts_with("--") {
            i += if matches!(t, "--rcfile" | "--init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if (t.starts_with('-') || t.starts_with('+')) && t.len() > 1 {
            let cluster = &t[1..];
            if t.starts_with('-') && cluster.contains('c') {
                sa.has_c = true;
            }
            if cluster.contains('s') {
                sa.stdin_flag = true;
            }
            i += if cluster.contains(['o', 'O']) { 2 } else { 1 };
            continue;
        }
        sa.operand = Some(a);
        return sa;
    }
    sa
}

enum EnvOperand {
    Cmd(usize),
    Split(String),
    None,
}

fn env_operand(args: &[Word]) -> EnvOperand {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        let split = |first: &str, from: usize| {
            let mut s = first.to_string();
            for w in args.get(from..).unwrap_or(&[]) {
                s.push(' ');
                s.push_str(&sh_quote(&w.text));
            }
            EnvOperand::Split(s)
        };
        if t == "-S" || t == "--split-string" {
            return match args.get(i + 1) {
                Some(s) => split(&s.text, i + 2),
                None => EnvOperand::None,
            };
        }
        if let Some(s) = t.strip_prefix("--split-string=") {
            return split(s, i + 1);
        }
        if let Some(s) = t.strip_prefix("-S").filter(|s| !s.is_empty()) {
            return split(s, i + 1);
        }
        if matches!(t, "-u" | "--unset" | "-C" | "--chdir" | "-a" | "--argv0") {
            i += 2;
        } else if t == "--" {
            i += 1;
            while args.get(i).is_some_and(Word::is_assignment) {
                i += 1;
            }
            return if i < args.len() {
                EnvOperand::Cmd(i)
            } else {
                EnvOperand::None
            };
        } else if t.starts_with('-') || a.is_assignment() {
            i += 1;
        } else {
            return EnvOperand::Cmd(i);
        }
    }
    EnvOperand::None
}

fn protected(rel: &str, glob: &str) -> Blocked {
    Blocked {
        rule: PROTECTED_PATH_RULE.to_string(),
        reason: format!("`{rel}` is a protected path (`{glob}` in safety.protected_paths)"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tool uses
// ---------------------------------------------------------------------------------------------

/// Tool names (lower case) whose input is a shell command, across backends: Claude and Amp
/// `Bash`, Codex `command_execution`/`exec_command`/`shell`/`local_shell`, Gemini
/// `run_shell_command`, opencode and Copilot `bash`, Cursor `shell` (`shellToolCall`), Kiro
/// `execute_bash`.
const SHELL_TOOLS: &[&str] = &[
    "bash",
    "shell",
    "run_shell_command",
    "shell_command",
    "exec_command",
    "command_execution",
    "local_shell",
    "local_shell_call",
    "execute_bash",
    "execute_command",
    "run_terminal_cmd",
    "run_command",
    "terminal",
    "shelltoolcall",
    "container.exec",
];

fn tool_args(v: &Value) -> &Value {
    v.get("args").filter(|a| a.is_object()).unwrap_or(v)
}

/// The shell command in a ToolUse event (`name`, `input` as compact JSON), for every backend's
/// shell tool; `None` for other tools. A working directory in the input (Gemini `directory`,
/// Codex `workdir`, Cursor `workingDirectory`, …) becomes a leading `cd DIR && `; an argv array
/// (Codex `shell`) is joined with quoting.
pub fn command_of(name: &str, input_json: &str) -> Option<String> {
    let lname = name.to_ascii_lowercase();
    let known = SHELL_TOOLS.contains(&lname.as_str());
    let fuzzy = ["bash", "shell", "terminal", "exec_command"]
        .iter()
        .any(|k| lname.contains(k));
    if !known && !fuzzy {
        return None;
    }
    let v: Value = serde_json::from_str(input_json).ok()?;
    let obj = tool_args(&v);
    let cmd = ["command", "cmd", "commandLine", "command_line"]
        .iter()
        .find_map(|k| obj.get(*k).filter(|c| !c.is_null()))?;
    let cmd = match cmd {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Option<Vec<String>> =
                items.iter().map(|i| i.as_str().map(sh_quote)).collect();
            parts?.join(" ")
        }
        _ => return None,
    };
    if cmd.trim().is_empty() {
        return None;
    }
    let dir = [
        "workdir",
        "cwd",
        "directory",
        "working_directory",
        "workingDirectory",
        "dir_path",
    ]
    .iter()
    .find_map(|k| {
        obj.get(*k)
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
    });
    Some(match dir {
        Some(d) => format!("cd {} && {cmd}", sh_quote(d)),
        None => cmd,
    })
}

/// Tool names (lower case) that write files: Claude `Write`/`Edit`/`MultiEdit`/`NotebookEdit`,
/// Gemini `write_file`/`replace`, opencode `write`/`edit`/`patch`, Copilot `create`/`edit`,
/// Cursor `write`/`edit`/`delete`, Codex `file_change`/`apply_patch`, Amp `edit_file`/
/// `create_file`.
const WRITE_TOOLS: &[&str] = &[
    "write",
    "edit",
    "multiedit",
    "notebookedit",
    "write_file",
    "replace",
    "edit_file",
    "create_file",
    "create",
    "str_replace_editor",
    "str_replace_based_edit_tool",
    "str_replace",
    "insert",
    "apply_patch",
    "patch",
    "file_change",
    "delete",
    "delete_file",
    "undo_edit",
    "move",
    "rename",
];

/// The files an edit tool writes (as the tool named them: absolute or relative to the project),
/// for every backend's edit tools; empty for other tools.
pub fn paths_of(name: &str, input_json: &str) -> Vec<String> {
    let lname = name.to_ascii_lowercase();
    let known = WRITE_TOOLS.contains(&lname.as_str());
    let fuzzy = [
        "write", "edit", "create", "replace", "patch", "delete", "remove", "rename", "insert",
    ]
    .iter()
    .any(|k| lname.contains(k));
    if !known && !fuzzy {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_str::<Value>(input_json) else {
        return Vec::new();
    };
    let obj = tool_args(&v);
    if obj.get("command").and_then(Value::as_str) == Some("view") {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        let p = p.trim();
        if !p.is_empty() && !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    };
    const KEYS: &[&str] = &[
        "file_path",
        "filePath",
        "path",
        "notebook_path",
        "absolute_path",
        "target_file",
        "targetFile",
        "filename",
        "file",
        "new_path",
        "newPath",
        "move_path",
        "destination",
    ];
    let collect = |o: &Value, add: &mut dyn FnMut(&str)| {
        for k in KEYS {
            if let Some(s) = o.get(*k).and_then(Value::as_str) {
                add(s);
            }
        }
    };
    collect(obj, &mut add);
    for list in ["changes", "edits", "files", "paths"] {
        if let Some(items) = obj.get(list).and_then(Value::as_array) {
            for item in items {
                match item {
                    Value::String(s) => add(s),
                    Value::Object(_) => collect(item, &mut add),
                    _ => {}
                }
            }
        }
    }
    for key in ["patch", "patchText", "patch_text", "input", "diff"] {
        if let Some(text) = obj.get(key).and_then(Value::as_str) {
            for line in text.lines() {
                let line = line.trim_end();
                for marker in [
                    "*** Add File: ",
                    "*** Update File: ",
                    "*** Delete File: ",
                    "*** Move to: ",
                ] {
                    if let Some(p) = line.strip_prefix(marker) {
                        add(p);
                    }
                }
                if let Some(p) = line.strip_prefix("+++ ") {
                    let p = p.split('\t').next().unwrap_or(p);
                    if p != "/dev/null" {
                        add(p.strip_prefix("b/").unwrap_or(p));
                    }
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Path guard
// ---------------------------------------------------------------------------------------------

/// Protected paths: globs relative to the project root (`safety.protected_paths`).
#[derive(Debug, Clone)]
pub struct PathGuard {
    globs: Vec<String>,
    set: GlobSet,
    /// For each glob of `set`, the index of the configured glob it came from.
    origin: Vec<usize>,
}

impl PathGuard {
    /// Exactly these globs (the configuration's value replaces the default set).
    pub fn new(globs: &[String]) -> Result<PathGuard, GuardError> {
        let mut builder = GlobSetBuilder::new();
        let mut origin = Vec::new();
        for (i, g) in globs.iter().enumerate() {
            let bad = |message: String| GuardError::InvalidGlob {
                glob: g.clone(),
                message,
            };
            let mut norm = g.trim();
            while let Some(rest) = norm.strip_prefix("./") {
                norm = rest;
            }
            let norm = norm.trim_start_matches('/');
            if norm.is_empty() {
                return Err(bad("empty".to_string()));
            }
            let norm = if norm.ends_with('/') {
                format!("{norm}**")
            } else {
                norm.to_string()
            };
            let mut variants = vec![norm.clone()];
            if let Some(dir) = norm.strip_suffix("/**") {
                if !dir.is_empty() {
                    variants.push(dir.to_string());
                }
            }
            for v in variants {
                let glob = GlobBuilder::new(&v)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| bad(e.kind().to_string()))?;
                builder.add(glob);
                origin.push(i);
            }
        }
        let set = builder.build().map_err(|e| GuardError::InvalidGlob {
            glob: globs.join(", "),
            message: e.to_string(),
        })?;
        Ok(PathGuard {
            globs: globs.to_vec(),
            set,
            origin,
        })
    }

    /// [`DEFAULT_PROTECTED_PATHS`].
    pub fn defaults() -> Result<PathGuard, GuardError> {
        let globs: Vec<String> = DEFAULT_PROTECTED_PATHS
            .iter()
            .map(|g| g.to_string())
            .collect();
        PathGuard::new(&globs)
    }

    /// The configured globs.
    pub fn globs(&self) -> &[String] {
        &self.globs
    }

    /// The first glob (as configured) matching `rel_path`, a path relative to the project root
    /// (normalised lexically first; a path leaving the root matches nothing).
    pub fn matches(&self, rel_path: &str) -> Option<&str> {
        let rel = relative_to_root(rel_path.trim_start_matches('/'), Path::new("/"))?;
        let hits = self.set.matches(&rel);
        let first = hits.into_iter().filter_map(|i| self.origin.get(i)).min()?;
        self.globs.get(*first).map(String::as_str)
    }

    /// [`matches`](Self::matches) for a path as a tool names it: absolute paths must be inside
    /// `project_root`, relative ones are relative to it.
    pub fn check_path(&self, path: &str, project_root: &Path) -> Option<&str> {
        let rel = relative_to_root(path, project_root)?;
        self.matches(&rel)
    }
}

// ---------------------------------------------------------------------------------------------
// Both
// ---------------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(s: &str) -> Script {
        Lexer::new(s, 0).script(false)
    }

    fn texts(c: &Cmd) -> Vec<&str> {
        c.words.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn lexer_splits_and_unquotes() {
        let s = lex("a 'b c' \"d $X\" e\\ f; g && h | i\nj");
        assert_eq!(s.pipelines.len(), 4);
        assert_eq!(texts(&s.pipelines[0][0]), ["a", "b c", "d $X", "e f"]);
        assert_eq!(s.pipelines[2].len(), 2);
    }

    #[test]
    fn lexer_substitutions_and_heredocs() {
        let s = lex("git commit -m \"$(cat <<'EOF'\nit's (odd\nEOF\n)\" && git push -f");
        assert_eq!(s.pipelines.len(), 2);
        let w = &s.pipelines[0][0].words[3];
        assert_eq!(w.subs.len(), 1);
        let inner = &w.subs[0].script.pipelines[0][0];
        assert!(
            matches!(&inner.stdin[0], Stdin::Heredoc { body, expand: false } if body == "it's (odd\n")
        );
        assert_eq!(texts(&s.pipelines[1][0]), ["git", "push", "-f"]);
    }

    #[test]
    fn lexer_redirections() {
        let s = lex("echo hi 2>/dev/null >out.txt <<< x");
        let c = &s.pipelines[0][0];
        assert_eq!(texts(c), ["echo", "hi"]);
        assert_eq!(c.redirs.len(), 2);
        assert_eq!(c.redirs[1].target.text, "out.txt");
        assert_eq!(c.stdin.len(), 1);
    }

    #[test]
    fn assignments_and_fork_bomb() {
        let s = lex("FOO=1 A+=2 b=c=d x=");
        let words = &s.pipelines[0][0].words;
        assert!(words.iter().all(Word::is_assignment));
        assert!(!lex("1x=2").pipelines[0][0].words[0].is_assignment());
        assert!(is_fork_bomb(":(){ :|:& };:"));
        assert!(is_fork_bomb("bomb() { bomb | bomb & }; bomb"));
        assert!(!is_fork_bomb("f() { echo hi; }; f"));
    }

    #[test]
    fn relative_paths() {
        let root = Path::new("/p/proj");
        assert_eq!(
            relative_to_root("/p/proj/.git/config", root).as_deref(),
            Some(".git/config")
        );
        assert_eq!(
            relative_to_root("./src/../ralph.toml", root).as_deref(),
            Some("ralph.toml")
        );
        assert_eq!(relative_to_root("/p/other/x", root), None);
        assert_eq!(relative_to_root("../x", root), None);
        assert_eq!(relative_to_root("/p/proj", root), None);
    }
}

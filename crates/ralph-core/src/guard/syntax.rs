//! A shell command as the lexer leaves it: scripts of pipelines of simple commands, whose words
//! remember which characters were quoted and which came from an expansion.

/// How a character of a word came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Q {
    /// Unquoted: globs and `~` apply.
    Bare,
    /// Quoted or escaped: literal.
    Quoted,
    /// Part of an expansion (`$VAR`, `${…}`, `$(…)`, `<(…)`): value unknown.
    Exp,
}

/// A command or process substitution (`$(…)`, backticks, `<(…)`, `>(…)`).
#[derive(Debug, Clone)]
pub(super) struct Sub {
    pub(super) script: Script,
}

/// What an expansion in a word is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExpKind {
    /// `$NAME` or `${NAME}`.
    Var(String),
    /// `$(…)` or backticks: the index into [`Word::subs`].
    Sub(usize),
    /// Anything else (`$1`, `$@`, `${X:-y}`, `<(…)`).
    Other,
}

/// Where an expansion sits in a word's text (char indices, end exclusive), so a value known
/// before the command runs (`G=git; $G …`, `$(echo rm)`) can be put in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExpSpan {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) kind: ExpKind,
    /// Inside double quotes: the value is not split into words.
    pub(super) in_dq: bool,
}

/// One shell word after quote removal; expansions are kept as written (`$HOME`, `$(pwd)`).
#[derive(Debug, Clone, Default)]
pub(super) struct Word {
    pub(super) text: String,
    /// One entry per char of `text`.
    pub(super) q: Vec<Q>,
    pub(super) subs: Vec<Sub>,
    /// The expansions in `text`, in order.
    pub(super) exps: Vec<ExpSpan>,
    /// Had quotes (so an empty text is still a word: `""`).
    pub(super) quoted: bool,
}

impl Word {
    /// A word of literal (quoted) text.
    pub(super) fn literal(s: &str) -> Word {
        let mut w = Word {
            quoted: true,
            ..Word::default()
        };
        w.push_str(s, Q::Quoted);
        w
    }

    /// A word written without quotes (globs and `~` apply), as `.` or `*` on a command line.
    pub(super) fn bare(s: &str) -> Word {
        let mut w = Word::default();
        w.push_str(s, Q::Bare);
        w
    }

    /// Whether an expansion decides what this word is.
    pub(super) fn has_exp(&self) -> bool {
        self.q.contains(&Q::Exp)
    }

    /// The char index where the value of an assignment starts (after `=`).
    pub(super) fn assignment_value_start(&self) -> Option<usize> {
        if !self.is_assignment() {
            return None;
        }
        self.text.chars().position(|c| c == '=').map(|i| i + 1)
    }

    /// The part of this word from char `from` on, with its expansions.
    pub(super) fn tail(&self, from: usize) -> Word {
        Word {
            text: self.text.chars().skip(from).collect(),
            q: self.q.get(from..).unwrap_or(&[]).to_vec(),
            subs: self.subs.clone(),
            exps: self
                .exps
                .iter()
                .filter(|e| e.start >= from)
                .map(|e| ExpSpan {
                    start: e.start - from,
                    end: e.end - from,
                    ..e.clone()
                })
                .collect(),
            quoted: self.quoted,
        }
    }

    pub(super) fn push(&mut self, c: char, q: Q) {
        self.text.push(c);
        self.q.push(q);
    }

    pub(super) fn push_str(&mut self, s: &str, q: Q) {
        for c in s.chars() {
            self.push(c, q);
        }
    }

    pub(super) fn chars(&self) -> impl Iterator<Item = (char, Q)> + '_ {
        self.text.chars().zip(self.q.iter().copied())
    }

    pub(super) fn any_quoted(&self) -> bool {
        self.quoted || self.q.contains(&Q::Quoted)
    }

    pub(super) fn all_bare(&self) -> bool {
        self.q.iter().all(|q| *q == Q::Bare)
    }

    /// `NAME=value` / `NAME+=value` with an unquoted name.
    pub(super) fn is_assignment(&self) -> bool {
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
pub(super) enum RedirOp {
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
pub(super) struct Redir {
    pub(super) op: RedirOp,
    pub(super) target: Word,
}

#[derive(Debug, Clone)]
pub(super) enum Stdin {
    Heredoc { body: String, expand: bool },
    HereString(Word),
}

/// A simple command.
#[derive(Debug, Clone, Default)]
pub(super) struct Cmd {
    pub(super) words: Vec<Word>,
    pub(super) redirs: Vec<Redir>,
    pub(super) stdin: Vec<Stdin>,
}

impl Cmd {
    pub(super) fn is_empty(&self) -> bool {
        self.words.is_empty() && self.redirs.is_empty() && self.stdin.is_empty()
    }

    /// Every word the shell expands for this command (arguments, redirection targets,
    /// here-strings).
    pub(super) fn all_words(&self) -> impl Iterator<Item = &Word> {
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
pub(super) type Pipeline = Vec<Cmd>;

#[derive(Debug, Clone, Default)]
pub(super) struct Script {
    pub(super) pipelines: Vec<Pipeline>,
}

pub(super) fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// The program a word names: its base name (`/usr/bin/git` → `git`).
pub(super) fn prog_name(w: &Word) -> String {
    match w.text.as_str() {
        "$SHELL" | "${SHELL}" => "sh".to_string(),
        t => basename(t).to_string(),
    }
}

pub(super) fn words_text(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

//! The POSIX shell lexer: quoting, escapes, expansions, substitutions (parsed recursively, up
//! to [`MAX_DEPTH`]), redirections and here-documents, into a [`Script`]; plus the fork-bomb
//! check on the unquoted text it saw.

use super::syntax::{Cmd, ExpKind, ExpSpan, Pipeline, Redir, RedirOp, Script, Stdin, Sub, Word, Q};

/// How deep substitutions and `sh -c` scripts may nest before the command is refused.
pub(super) const MAX_DEPTH: usize = 8;

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

pub(super) struct Lexer {
    s: Vec<char>,
    pos: usize,
    depth: usize,
    pub(super) too_deep: bool,
    /// The unquoted characters seen (quoted text replaced by `\u{1}`), for the fork-bomb check.
    pub(super) skel: String,
}

impl Lexer {
    pub(super) fn new(src: &str, depth: usize) -> Lexer {
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
    pub(super) fn script(&mut self, in_sub: bool) -> Script {
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
            '`' => self.backtick(w, false),
            _ => {
                w.push(c, Q::Bare);
                self.pos += 1;
            }
        }
    }

    /// Double-quoted text up to `term` (or the end): only `$`, backticks and `\` are special.
    pub(super) fn dquote(&mut self, w: &mut Word, term: Option<char>) {
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
                '`' => self.backtick(w, true),
                _ => {
                    w.push(c, Q::Quoted);
                    self.pos += 1;
                }
            }
        }
    }

    fn dollar(&mut self, w: &mut Word, in_dq: bool) {
        let start = w.q.len();
        let kind = self.dollar_part(w, in_dq);
        if let Some(kind) = kind {
            w.exps.push(ExpSpan {
                start,
                end: w.q.len(),
                kind,
                in_dq,
            });
        }
    }

    /// The expansion after a `$`, pushed onto `w`; what kind it is (`None`: not an expansion).
    fn dollar_part(&mut self, w: &mut Word, in_dq: bool) -> Option<ExpKind> {
        match self.peek_at(1) {
            Some('\'') if !in_dq => {
                self.pos += 2;
                w.quoted = true;
                self.skel.push('\u{1}');
                self.ansi_c(w);
                None
            }
            Some('"') if !in_dq => {
                self.pos += 2;
                w.quoted = true;
                self.skel.push('\u{1}');
                self.dquote(w, Some('"'));
                None
            }
            Some('(') => {
                self.pos += 2;
                let (script, raw) = self.sub_script();
                w.push('$', Q::Exp);
                w.push('(', Q::Exp);
                w.push_str(&raw, Q::Exp);
                w.push(')', Q::Exp);
                w.subs.push(Sub { script });
                Some(ExpKind::Sub(w.subs.len() - 1))
            }
            Some('{') => {
                let start = self.pos;
                self.pos += 2;
                self.skip_balanced('{', '}');
                let raw = self.slice(start, self.pos);
                w.push_str(&raw, Q::Exp);
                let name = raw.get(2..raw.len().saturating_sub(1)).unwrap_or("");
                let simple = !name.is_empty()
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                Some(if simple && raw.ends_with('}') {
                    ExpKind::Var(name.to_string())
                } else {
                    ExpKind::Other
                })
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                w.push('$', Q::Exp);
                self.pos += 1;
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '_') {
                        break;
                    }
                    w.push(c, Q::Exp);
                    name.push(c);
                    self.pos += 1;
                }
                Some(ExpKind::Var(name))
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                w.push('$', Q::Exp);
                w.push(c, Q::Exp);
                self.pos += 2;
                Some(ExpKind::Other)
            }
            _ => {
                w.push('$', if in_dq { Q::Quoted } else { Q::Bare });
                self.pos += 1;
                None
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

    fn backtick(&mut self, w: &mut Word, in_dq: bool) {
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
        let start = w.q.len();
        w.push_str("$(", Q::Exp);
        w.push_str(&inner, Q::Exp);
        w.push(')', Q::Exp);
        w.subs.push(Sub { script });
        w.exps.push(ExpSpan {
            start,
            end: w.q.len(),
            kind: ExpKind::Sub(w.subs.len() - 1),
            in_dq,
        });
    }

    fn redirect(&mut self, b: &mut Builder, c: char) {
        if self.peek_at(1) == Some('(') {
            // Process substitution: part of a word.
            self.pos += 2;
            let (script, raw) = self.sub_script();
            let w = b.word.get_or_insert_with(Word::default);
            let start = w.q.len();
            w.push(c, Q::Exp);
            w.push('(', Q::Exp);
            w.push_str(&raw, Q::Exp);
            w.push(')', Q::Exp);
            w.subs.push(Sub { script });
            w.exps.push(ExpSpan {
                start,
                end: w.q.len(),
                kind: ExpKind::Other,
                in_dq: false,
            });
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
pub(super) fn shell_words(src: &str) -> Option<Vec<String>> {
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
pub(super) fn is_fork_bomb(skel: &str) -> bool {
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
}

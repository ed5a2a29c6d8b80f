//! Values known before a command runs, put in place of the expansions that name them: shell
//! variables assigned anywhere in the command (`G=git; $G push -f`, `export G=git`,
//! `for G in ls git`), command substitutions whose output is literal (`$(echo rm)`,
//! `` `printf rm` ``, `$(which rm)`), and the files a download writes (`curl -o x.sh`, run later
//! as `sh x.sh`).
//!
//! Every value a variable is given anywhere in the command is a candidate, wherever it is used:
//! an over-approximation (a subshell's assignment, or one after the use inside a loop, counts
//! too), so a dangerous candidate is never missed. A variable ralph never saw assigned comes
//! from the environment and stays unknown.

use std::collections::{HashMap, HashSet};

use super::super::syntax::{basename, prog_name, Cmd, ExpKind, RedirOp, Script, Word, Q};
use super::unwrap::Inv;
use super::Analyzer;

/// How many alternative expansions of one command are checked; beyond that the command counts
/// as unresolvable.
const MAX_CANDIDATES: usize = 32;
/// How deep a value may refer to other values (`A=$B`, `$(echo $(echo rm))`).
const MAX_VALUE_DEPTH: usize = 4;

/// What the command has shown so far, shared by the whole check.
#[derive(Debug, Default)]
pub(in crate::guard) struct Known {
    /// Each value a variable is assigned (`None`: a value ralph cannot know, as from `read`).
    vars: HashMap<String, Vec<Option<Word>>>,
    /// Files a download writes, as written (`./` stripped).
    pub(super) downloads: HashSet<String>,
    /// Values looked up so far: past [`MAX_LOOKUPS`] every value is unknown, so a command
    /// built to make the lookup explode (`A=$A$A` a thousand times) costs little.
    lookups: usize,
}

/// How many variable values one check may look at.
const MAX_LOOKUPS: usize = 4096;

/// A command's words with the known values in place.
pub(super) struct Expanded {
    /// Each combination of candidate values (the words unchanged when nothing was known).
    pub(super) alternatives: Vec<Vec<Word>>,
}

/// A file name as written, for comparing downloads with what runs (`./x.sh` is `x.sh`).
pub(super) fn norm_file(t: &str) -> &str {
    let mut t = t;
    while let Some(rest) = t.strip_prefix("./") {
        t = rest;
    }
    t
}

impl Analyzer<'_> {
    /// Record the assignments and downloads in `script` (and in its substitutions).
    pub(super) fn learn(&self, script: &Script, depth: usize) {
        if depth > super::MAX_DEPTH {
            return;
        }
        for cmd in script.pipelines.iter().flatten() {
            for w in cmd.all_words() {
                for sub in &w.subs {
                    self.learn(&sub.script, depth + 1);
                }
            }
            self.learn_cmd(cmd);
        }
    }

    fn learn_cmd(&self, cmd: &Cmd) {
        let mut known = self.known.borrow_mut();
        for w in cmd.words.iter().take_while(|w| w.is_assignment()) {
            assign(&mut known, w);
        }
        drop(known);
        let words = match self.unwrap(&cmd.words, false) {
            Ok(Inv::Exec(words)) => words,
            // `unwrap` stops at `for`: it runs nothing itself.
            _ => match cmd
                .words
                .iter()
                .position(|w| w.all_bare() && w.text == "for")
            {
                Some(i) => &cmd.words[i..],
                None => return,
            },
        };
        let Some(first) = words.first() else {
            return;
        };
        let prog = prog_name(first);
        let args = &words[1..];
        let mut known = self.known.borrow_mut();
        match prog.as_str() {
            "export" | "declare" | "typeset" | "local" | "readonly" => {
                for a in args.iter().filter(|a| a.is_assignment()) {
                    assign(&mut known, a);
                }
            }
            "for" | "select" => {
                if let Some(name) = args.first().filter(|a| a.all_bare()) {
                    let values = args.iter().skip(2).take_while(|a| a.text != ";");
                    let entry = known.vars.entry(name.text.clone()).or_default();
                    let mut any = false;
                    for v in values {
                        entry.push(Some(v.clone()));
                        any = true;
                    }
                    if !any || args.get(1).is_none_or(|a| a.text != "in") {
                        entry.push(None);
                    }
                }
            }
            "read" | "mapfile" | "readarray" | "getopts" => {
                for a in args
                    .iter()
                    .filter(|a| a.all_bare() && !a.text.starts_with('-'))
                {
                    known.vars.entry(a.text.clone()).or_default().push(None);
                }
            }
            _ => {}
        }
        if super::shells::DOWNLOADERS.contains(&prog.as_str()) {
            known.downloads.extend(download_targets(&prog, args, cmd));
        }
    }

    /// `words` with every known value in place: one list per combination of candidates.
    pub(super) fn expand_words(&self, words: &[Word], depth: usize) -> Expanded {
        if words.iter().all(|w| w.exps.is_empty()) {
            return Expanded {
                alternatives: vec![words.to_vec()],
            };
        }
        let mut alternatives: Vec<Vec<Word>> = vec![Vec::new()];
        for w in words {
            let mut options = self.expand_word(w, depth);
            if options.len() == 1 {
                let opt = options.pop().unwrap_or_default();
                for alt in &mut alternatives {
                    alt.extend(opt.iter().cloned());
                }
                continue;
            }
            if alternatives.len() * options.len() > MAX_CANDIDATES {
                // Too many combinations: keep the words as written (what cannot be resolved
                // then counts as unknown, never as harmless).
                return Expanded {
                    alternatives: vec![words.to_vec()],
                };
            }
            alternatives = alternatives
                .into_iter()
                .flat_map(|prefix| {
                    options.iter().map(move |opt| {
                        let mut v = prefix.clone();
                        v.extend(opt.iter().cloned());
                        v
                    })
                })
                .collect();
        }
        Expanded { alternatives }
    }

    /// The words one word may become: each known value of each expansion in its place (and
    /// split into words where it was unquoted). An unknown expansion stays as written.
    fn expand_word(&self, w: &Word, depth: usize) -> Vec<Vec<Word>> {
        if w.exps.is_empty() || depth > MAX_VALUE_DEPTH {
            return vec![vec![w.clone()]];
        }
        // Each span: the texts it may have (None: unknown, keep as written).
        let mut per_span: Vec<Option<Vec<String>>> = Vec::new();
        for e in &w.exps {
            per_span.push(self.span_values(w, &e.kind, depth));
        }
        if per_span.iter().all(Option::is_none) {
            return vec![vec![w.clone()]];
        }
        let mut combos: Vec<Vec<Option<&String>>> = vec![Vec::new()];
        for vals in &per_span {
            let next: Vec<Vec<Option<&String>>> = match vals {
                None => combos
                    .into_iter()
                    .map(|mut c| {
                        c.push(None);
                        c
                    })
                    .collect(),
                Some(vs) => combos
                    .into_iter()
                    .flat_map(|c| {
                        vs.iter().map(move |v| {
                            let mut c = c.clone();
                            c.push(Some(v));
                            c
                        })
                    })
                    .collect(),
            };
            if next.len() > MAX_CANDIDATES {
                return vec![vec![w.clone()]];
            }
            combos = next;
        }
        combos.into_iter().map(|c| substitute(w, &c)).collect()
    }

    /// The texts one expansion may have, if all are known.
    fn span_values(&self, w: &Word, kind: &ExpKind, depth: usize) -> Option<Vec<String>> {
        match kind {
            ExpKind::Var(name) => {
                let values = {
                    let mut known = self.known.borrow_mut();
                    let n = known.vars.get(name)?.len();
                    known.lookups += n;
                    if known.lookups > MAX_LOOKUPS || n > MAX_CANDIDATES {
                        return None;
                    }
                    known.vars.get(name)?.clone()
                };
                let mut out = Vec::new();
                for v in values {
                    let v = v?;
                    for alt in self.expand_word(&v, depth + 1) {
                        if alt.iter().any(Word::has_exp) {
                            return None;
                        }
                        out.push(
                            alt.iter()
                                .map(|w| w.text.as_str())
                                .collect::<Vec<_>>()
                                .join(" "),
                        );
                    }
                }
                (!out.is_empty()).then_some(out)
            }
            ExpKind::Sub(i) => self.sub_output(&w.subs.get(*i)?.script, depth + 1),
            ExpKind::Other => None,
        }
    }

    /// The words `cmd` prints, as `xargs` would read them, when they are known: literal text,
    /// `pwd`, or the start points of a `find` that prints everything under them.
    pub(super) fn output_items(&self, cmd: &Cmd, _cwd: &super::targets::Cwd) -> Option<Vec<Word>> {
        let literal = self
            .literal_output(cmd)
            .map(|text| text.split_whitespace().map(Word::literal).collect());
        let Ok(Inv::Exec(words)) = self.unwrap(&cmd.words, false) else {
            return literal;
        };
        let first = words.first()?;
        match prog_name(first).as_str() {
            // The shell expands `~` and globs in echo's arguments before echo prints them.
            "echo"
                if literal.is_some()
                    && words
                        .iter()
                        .all(|w| !w.has_exp() && !w.text.contains(char::is_whitespace)) =>
            {
                let args = &words[1..];
                let skip = args
                    .iter()
                    .take_while(|a| matches!(a.text.as_str(), "-n" | "-e" | "-E" | "-ne" | "-en"))
                    .count();
                Some(args[skip..].to_vec())
            }
            "pwd" => {
                let mut w = Word::default();
                w.push_str("$PWD", Q::Exp);
                Some(vec![w])
            }
            "find" => {
                let args = &words[1..];
                let starts: Vec<Word> = args
                    .iter()
                    .skip_while(|a| matches!(a.text.as_str(), "-H" | "-L" | "-P"))
                    .take_while(|a| !a.text.starts_with('-') && a.text != "(" && a.text != "!")
                    .cloned()
                    .collect();
                let n_opts = args
                    .iter()
                    .take_while(|a| matches!(a.text.as_str(), "-H" | "-L" | "-P"))
                    .count();
                // Only a find that prints its start points itself: no tests that select.
                let everything = args[n_opts + starts.len()..].iter().all(|a| {
                    matches!(
                        a.text.as_str(),
                        "-print" | "-print0" | "-depth" | "-xdev" | "-mount" | "-maxdepth"
                    ) || a.text.chars().all(|c| c.is_ascii_digit())
                });
                if !everything {
                    return None;
                }
                Some(if starts.is_empty() {
                    vec![Word::bare(".")]
                } else {
                    starts
                })
            }
            _ => literal,
        }
    }

    /// What a command substitution prints, when it only prints literal text (`echo`, `printf`,
    /// `cat` of a here-document) or names a program (`which rm`, `command -v rm`).
    fn sub_output(&self, script: &Script, depth: usize) -> Option<Vec<String>> {
        let [pipeline] = script.pipelines.as_slice() else {
            return None;
        };
        let [cmd] = pipeline.as_slice() else {
            return None;
        };
        let mut out = Vec::new();
        for words in self.expand_words(&cmd.words, depth).alternatives {
            if words.iter().any(Word::has_exp) {
                return None;
            }
            let c = Cmd {
                words,
                redirs: cmd.redirs.clone(),
                stdin: cmd.stdin.clone(),
            };
            let text = self.literal_output(&c).or_else(|| program_lookup(&c))?;
            out.push(text.trim_end_matches('\n').to_string());
        }
        (!out.is_empty()).then_some(out)
    }
}

/// `which rm`, `command -v rm`, `type -P rm`: they print the program's path; its base name is
/// what runs.
fn program_lookup(cmd: &Cmd) -> Option<String> {
    let words: Vec<&str> = cmd.words.iter().map(|w| w.text.as_str()).collect();
    match words.as_slice() {
        ["which" | "whereis", .., name] | ["command" | "type", "-v" | "-p" | "-P", name] => {
            Some(basename(name).to_string())
        }
        _ => None,
    }
}

fn assign(known: &mut Known, w: &Word) {
    let Some(at) = w.assignment_value_start() else {
        return;
    };
    let name: String = w.text.chars().take(at - 1).collect();
    let (name, value) = match name.strip_suffix('+') {
        // `A+=x` appends to a value ralph may not know.
        Some(n) => (n.to_string(), None),
        None => (name, Some(w.tail(at))),
    };
    known.vars.entry(name).or_default().push(value);
}

/// `w` with the values of its expansions in place (`None`: keep as written), split where an
/// unquoted value has blanks.
fn substitute(w: &Word, values: &[Option<&String>]) -> Vec<Word> {
    // (char, how it came to be, may split here)
    let mut chars: Vec<(char, Q, bool)> = Vec::new();
    let src: Vec<(char, Q)> = w.chars().collect();
    let mut pos = 0;
    for (e, v) in w.exps.iter().zip(values) {
        chars.extend(
            src.get(pos..e.start)
                .unwrap_or(&[])
                .iter()
                .map(|(c, q)| (*c, *q, false)),
        );
        match v {
            Some(v) => {
                for c in v.chars() {
                    // A value's characters are data: only globs still apply unquoted.
                    let q = if e.in_dq || c == '~' {
                        Q::Quoted
                    } else {
                        Q::Bare
                    };
                    chars.push((c, q, !e.in_dq && c.is_whitespace()));
                }
            }
            None => chars.extend(
                src.get(e.start..e.end)
                    .unwrap_or(&[])
                    .iter()
                    .map(|(c, q)| (*c, *q, false)),
            ),
        }
        pos = e.end;
    }
    chars.extend(
        src.get(pos..)
            .unwrap_or(&[])
            .iter()
            .map(|(c, q)| (*c, *q, false)),
    );
    let mut out = Vec::new();
    let mut cur = Word {
        quoted: w.quoted,
        ..Word::default()
    };
    for (c, q, split) in chars {
        if split {
            if !cur.text.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        cur.push(c, q);
    }
    if !cur.text.is_empty() || cur.quoted || out.is_empty() {
        out.push(cur);
    }
    // Unknown expansions kept as written keep their substitutions for later checks.
    for o in &mut out {
        if o.has_exp() {
            o.subs = w.subs.clone();
        }
    }
    out
}

/// The files `curl`/`wget` write: `-o F`, `--output F`, `-O`/remote name, `> F`.
fn download_targets(prog: &str, args: &[Word], cmd: &Cmd) -> Vec<String> {
    let mut out = Vec::new();
    let mut remote_name = prog.starts_with("wget");
    let mut urls = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        i += 1;
        let curl = !prog.starts_with("wget");
        let value = |v: Option<&Word>| v.map(|w| w.text.clone());
        let named = match t {
            "-o" | "--output" if curl => value(args.get(i)),
            "-O" | "--output-document" if !curl => value(args.get(i)),
            "-O" | "--remote-name" | "--remote-name-all" if curl => {
                remote_name = true;
                continue;
            }
            _ if curl && short_cluster_ends(t, 'o') => value(args.get(i)),
            _ => {
                if curl && t.starts_with('-') && !t.starts_with("--") && t.contains('O') {
                    remote_name = true;
                }
                if let Some(v) = t.strip_prefix("--output=").filter(|_| curl) {
                    out.push(v.to_string());
                } else if let Some(v) = t.strip_prefix("--output-document=").filter(|_| !curl) {
                    out.push(v.to_string());
                } else if t.contains("://") {
                    urls.push(t.to_string());
                } else if let Some(v) = t.strip_prefix(if curl { "-o" } else { "-O" }) {
                    if !v.is_empty() && !v.starts_with('-') {
                        out.push(v.to_string());
                    }
                }
                continue;
            }
        };
        i += 1;
        match named {
            Some(n) if n != "-" => {
                out.push(n);
                if !curl {
                    remote_name = false;
                }
            }
            _ => {
                if !curl {
                    remote_name = false;
                }
            }
        }
    }
    if remote_name {
        for u in urls {
            let path = u.split(['?', '#']).next().unwrap_or("");
            if let Some(name) = path.rsplit('/').next().filter(|n| !n.is_empty()) {
                out.push(name.to_string());
            }
        }
    }
    for r in &cmd.redirs {
        if r.op == RedirOp::Out {
            out.push(r.target.text.clone());
        }
    }
    out.into_iter().map(|s| norm_file(&s).to_string()).collect()
}

/// `-sSLo`: a cluster of short options whose last one is `c` (its value follows).
fn short_cluster_ends(t: &str, c: char) -> bool {
    t.len() > 2 && t.starts_with('-') && !t.starts_with("--") && t.ends_with(c)
}

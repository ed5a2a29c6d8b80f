//! The exit codes the docs print agree with `ralph_types::exit_codes::TABLE`, the one table the
//! commands use: every `| code | meaning |` table in the README and the docs is exactly that
//! table, and every exit code the docs mention in passing (`exit 7`, `exits 130`, an `exit`
//! column) is one ralph has.

use ralph_types::exit_codes::{self, TABLE};

/// The user docs of the repository, by path relative to its root.
const DOCS: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")),
    ),
    (
        "docs/guide.md",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/guide.md")),
    ),
    (
        "docs/config.md",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md")),
    ),
];

/// The lines of `text` outside fenced code blocks (examples there show other programs' exit
/// codes, such as a failing gate's), with their 1-based line numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

/// Markdown tables: (line of the header, header cells, rows of cells).
type Table = (usize, Vec<String>, Vec<Vec<String>>);

fn tables(text: &str) -> Vec<Table> {
    let lines = prose_lines(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        let (n, header) = lines[i];
        let separator = lines[i + 1].1.trim();
        let is_table = header.trim_start().starts_with('|')
            && separator.starts_with("|-")
            && separator
                .chars()
                .all(|c| matches!(c, '|' | '-' | ':' | ' '));
        if !is_table {
            i += 1;
            continue;
        }
        let mut rows = Vec::new();
        let mut j = i + 2;
        while j < lines.len() && lines[j].1.trim_start().starts_with('|') {
            rows.push(cells(lines[j].1));
            j += 1;
        }
        out.push((n, cells(header), rows));
        i = j;
    }
    out
}

/// Numbers following `exit `, `exits `, `exit code ` or `exit codes ` in a line.
fn mentioned_codes(line: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let lower = line.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("exit") {
        let after = &rest[at + "exit".len()..];
        let after = after
            .strip_prefix("s ")
            .or_else(|| after.strip_prefix(" codes "))
            .or_else(|| after.strip_prefix(" code "))
            .or_else(|| after.strip_prefix(' '))
            .unwrap_or("");
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(code) = digits.parse() {
            out.push(code);
        }
        rest = &rest[at + "exit".len()..];
    }
    out
}

#[test]
fn every_exit_code_table_in_the_docs_is_the_table() {
    let expected: Vec<Vec<String>> = TABLE
        .iter()
        .map(|e| vec![e.code.to_string(), e.meaning.to_owned()])
        .collect();
    let mut found = Vec::new();
    for (doc, text) in DOCS {
        for (line, header, rows) in tables(text) {
            if header != ["code", "meaning"] {
                continue;
            }
            found.push(*doc);
            assert_eq!(
                rows,
                expected,
                "{doc}:{line}: the exit-code table disagrees with ralph_types::exit_codes::TABLE; \
                 paste this instead:\n{}",
                exit_codes::markdown_table()
            );
        }
    }
    assert!(
        found.contains(&"README.md"),
        "README.md has no `| code | meaning |` exit-code table; paste:\n{}",
        exit_codes::markdown_table()
    );
}

#[test]
fn every_exit_code_the_docs_mention_exists() {
    let known = |code: i32| exit_codes::describe(code).is_some();
    for (doc, text) in DOCS {
        for (line, l) in prose_lines(text) {
            for code in mentioned_codes(l) {
                assert!(
                    known(code),
                    "{doc}:{line}: exit {code} is not an exit code of ralph: {l}"
                );
            }
        }
        for (line, header, rows) in tables(text) {
            let Some(column) = header.iter().position(|h| h == "exit" || h == "code") else {
                continue;
            };
            for row in rows {
                let cell = row.get(column).map(String::as_str).unwrap_or("");
                if let Ok(code) = cell.parse::<i32>() {
                    assert!(
                        known(code),
                        "{doc}:{line}: exit {code} in a table is not an exit code of ralph"
                    );
                }
            }
        }
    }
}

#[test]
fn the_checks_can_fail() {
    // A prose list like the one the README used to have is no table, and a wrong code is seen.
    assert!(tables("Exit codes: 0 completed · 2 usage error\n").is_empty());
    assert_eq!(
        mentioned_codes("stops (exit 6); exits 130; exit code 2; exit codes 42"),
        [6, 130, 2, 42]
    );
    assert!(mentioned_codes("the gate's name, exit code and the output").is_empty());
    let t = tables("x\n\n| code | meaning |\n|---|---|\n| 0 | done |\n| 1 | bug |\n\nafter\n");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].0, 3);
    assert_eq!(t[0].2, [vec!["0", "done"], vec!["1", "bug"]]);
    assert!(tables("```\n| code | meaning |\n|---|---|\n| 0 | x |\n```\n").is_empty());
}

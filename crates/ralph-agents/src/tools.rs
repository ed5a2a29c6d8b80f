//! Normalised tool actions: what a tool use an agent reported ([`crate::AgentEvent::ToolUse`])
//! does, whatever the CLI calls the tool and however it shapes the input: runs a shell command
//! ([`ToolAction::Shell`]), writes files ([`ToolAction::Write`]) or something else.
//!
//! Each backend module declares its tools in a [`ToolTable`] (its descriptor's `tools`): the
//! tool names (compared ignoring ASCII case) and, per tool, which input keys hold the command,
//! its working directory, the paths or a patch. [`crate::Backend::tool_action`] reads the
//! backend's own table and nothing else.
//!
//! The guard cannot trust a tool name to come from the backend it runs (a `custom` command, an
//! MCP server, a renamed tool), so [`command_any`], [`paths_any`] and [`action_any`] know every
//! table at once, plus [`GENERIC`] (tools of no backend here: Anthropic's text-editor tool,
//! IDE agents' names) and guess from the name (`…bash…`, `…shell…`, `…write…`, `…edit…`) when
//! no table lists it; they read every key any table uses.

use std::sync::LazyLock;

use serde_json::Value;

use crate::backend::shell_quote;

/// What one tool use does, as far as ralph's guard is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolAction {
    /// Runs a shell command. A working directory in the input comes first as `cd DIR && `; an
    /// argv array is joined with shell quoting.
    Shell { command: String },
    /// Creates, edits, moves or deletes these files, named as the tool named them (absolute or
    /// relative to the project).
    Write { paths: Vec<String> },
    /// Anything else: reads, searches, web fetches, tools of unknown shape.
    Other,
}

/// Where a shell tool's input holds the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellInput {
    /// Keys that may hold the command (a string, or an argv array), first present wins.
    pub command: &'static [&'static str],
    /// Keys that may hold the directory it runs in, first non-empty wins.
    pub workdir: &'static [&'static str],
}

/// Where an edit tool's input names the files it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteInput {
    /// Keys holding a path, at the top level and in the objects of `lists`.
    pub path: &'static [&'static str],
    /// Keys holding a list of paths, or of objects with `path` keys (Codex `changes`).
    pub lists: &'static [&'static str],
    /// Keys holding a patch whose file headers name the paths (`*** Update File: p`,
    /// `+++ b/p`).
    pub patch: &'static [&'static str],
}

impl WriteInput {
    /// An input naming its one file under one of `keys`.
    pub const fn path(keys: &'static [&'static str]) -> WriteInput {
        WriteInput {
            path: keys,
            lists: &[],
            patch: &[],
        }
    }
}

/// What a tool does with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolInput {
    Shell(ShellInput),
    Write(WriteInput),
}

/// One tool of one CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSpec {
    /// As the backend's parser reports it; compared ignoring ASCII case.
    pub name: &'static str,
    pub input: ToolInput,
}

impl ToolSpec {
    /// A shell tool.
    pub const fn shell(
        name: &'static str,
        command: &'static [&'static str],
        workdir: &'static [&'static str],
    ) -> ToolSpec {
        ToolSpec {
            name,
            input: ToolInput::Shell(ShellInput { command, workdir }),
        }
    }

    /// A tool that writes files.
    pub const fn write(name: &'static str, input: WriteInput) -> ToolSpec {
        ToolSpec {
            name,
            input: ToolInput::Write(input),
        }
    }
}

/// The tools of one CLI that run commands or write files; every other tool is
/// [`ToolAction::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolTable {
    pub tools: &'static [ToolSpec],
}

impl ToolTable {
    /// No tools (text output).
    pub const EMPTY: ToolTable = ToolTable { tools: &[] };

    /// The tool called `name` (ignoring ASCII case).
    pub fn get(&self, name: &str) -> Option<&'static ToolSpec> {
        self.tools
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// What a use of the tool `name` with `input_json` does, read with this table only.
    pub fn action(&self, name: &str, input_json: &str) -> ToolAction {
        let Some(tool) = self.get(name) else {
            return ToolAction::Other;
        };
        let Ok(v) = serde_json::from_str::<Value>(input_json) else {
            return ToolAction::Other;
        };
        match tool.input {
            ToolInput::Shell(s) => match shell_command(&v, s.command, s.workdir) {
                Some(command) => ToolAction::Shell { command },
                None => ToolAction::Other,
            },
            ToolInput::Write(w) => write_action(written_paths(&v, w.path, w.lists, w.patch)),
        }
    }
}

/// Tools of no backend here: Anthropic's text-editor tool (`str_replace_editor`,
/// `str_replace_based_edit_tool` and its commands), IDE agents' and MCP servers' common names.
pub const GENERIC: ToolTable = ToolTable {
    tools: &[
        ToolSpec::shell("execute_command", ANY_SHELL.command, ANY_SHELL.workdir),
        ToolSpec::shell("run_terminal_cmd", ANY_SHELL.command, ANY_SHELL.workdir),
        ToolSpec::shell("run_command", ANY_SHELL.command, ANY_SHELL.workdir),
        ToolSpec::shell("terminal", ANY_SHELL.command, ANY_SHELL.workdir),
        ToolSpec::write("str_replace_editor", ANY_WRITE),
        ToolSpec::write("str_replace_based_edit_tool", ANY_WRITE),
        ToolSpec::write("str_replace", ANY_WRITE),
        ToolSpec::write("insert", ANY_WRITE),
        ToolSpec::write("undo_edit", ANY_WRITE),
        ToolSpec::write("delete_file", ANY_WRITE),
        ToolSpec::write("move", ANY_WRITE),
        ToolSpec::write("rename", ANY_WRITE),
    ],
};

/// Every key a shell tool of any CLI keeps its command and directory in, in the order the
/// backend-agnostic functions try them.
const ANY_SHELL: ShellInput = ShellInput {
    command: &["command", "cmd", "commandLine", "command_line"],
    workdir: &[
        "workdir",
        "cwd",
        "directory",
        "working_directory",
        "workingDirectory",
        "dir_path",
    ],
};

/// Every key an edit tool of any CLI names its files in.
const ANY_WRITE: WriteInput = WriteInput {
    path: &[
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
    ],
    lists: &["changes", "edits", "files", "paths"],
    patch: &["patch", "patchText", "patch_text", "input", "diff"],
};

/// Names containing one of these are taken for shell tools even when no table lists them.
const SHELL_HINTS: &[&str] = &["bash", "shell", "terminal", "exec_command"];
/// Names containing one of these are taken for edit tools even when no table lists them.
const WRITE_HINTS: &[&str] = &[
    "write", "edit", "create", "replace", "patch", "delete", "remove", "rename", "insert",
];

/// Every table's names and keys together: [`ANY_SHELL`] and [`ANY_WRITE`] first, then keys
/// only a backend's table uses.
struct Catalog {
    shell_names: Vec<&'static str>,
    write_names: Vec<&'static str>,
    command: Vec<&'static str>,
    workdir: Vec<&'static str>,
    path: Vec<&'static str>,
    lists: Vec<&'static str>,
    patch: Vec<&'static str>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let mut c = Catalog {
        shell_names: Vec::new(),
        write_names: Vec::new(),
        command: ANY_SHELL.command.to_vec(),
        workdir: ANY_SHELL.workdir.to_vec(),
        path: ANY_WRITE.path.to_vec(),
        lists: ANY_WRITE.lists.to_vec(),
        patch: ANY_WRITE.patch.to_vec(),
    };
    fn add(list: &mut Vec<&'static str>, keys: &[&'static str]) {
        for k in keys {
            if !list.contains(k) {
                list.push(k);
            }
        }
    }
    let tables = crate::registry::descriptors()
        .iter()
        .map(|d| &d.tools)
        .chain(std::iter::once(&GENERIC));
    for tool in tables.flat_map(|t| t.tools) {
        match tool.input {
            ToolInput::Shell(s) => {
                c.shell_names.push(tool.name);
                add(&mut c.command, s.command);
                add(&mut c.workdir, s.workdir);
            }
            ToolInput::Write(w) => {
                c.write_names.push(tool.name);
                add(&mut c.path, w.path);
                add(&mut c.lists, w.lists);
                add(&mut c.patch, w.patch);
            }
        }
    }
    c
});

/// Whether `name` is one of `names` (ignoring ASCII case) or contains one of `hints`.
fn known_or_hinted(name: &str, names: &[&str], hints: &[&str]) -> bool {
    let lname = name.to_ascii_lowercase();
    names.iter().any(|n| n.eq_ignore_ascii_case(&lname)) || hints.iter().any(|h| lname.contains(h))
}

/// The shell command of a tool use of any backend (`None` for other tools), read with every
/// table: the guard's view of a command.
pub fn command_any(name: &str, input_json: &str) -> Option<String> {
    let c = &*CATALOG;
    if !known_or_hinted(name, &c.shell_names, SHELL_HINTS) {
        return None;
    }
    let v: Value = serde_json::from_str(input_json).ok()?;
    shell_command(&v, &c.command, &c.workdir)
}

/// The files a tool use of any backend writes (empty for other tools), read with every table:
/// the guard's view of an edit.
pub fn paths_any(name: &str, input_json: &str) -> Vec<String> {
    let c = &*CATALOG;
    if !known_or_hinted(name, &c.write_names, WRITE_HINTS) {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_str::<Value>(input_json) else {
        return Vec::new();
    };
    written_paths(&v, &c.path, &c.lists, &c.patch)
}

/// [`command_any`] as [`ToolAction::Shell`], else [`paths_any`] as [`ToolAction::Write`], else
/// [`ToolAction::Other`]. A tool whose unlisted name hints at both (`bash_edit`) and whose
/// input has both a command and a path reports only the command here; checking every tool use
/// fully takes both functions.
pub fn action_any(name: &str, input_json: &str) -> ToolAction {
    match command_any(name, input_json) {
        Some(command) => ToolAction::Shell { command },
        None => write_action(paths_any(name, input_json)),
    }
}

fn write_action(paths: Vec<String>) -> ToolAction {
    if paths.is_empty() {
        ToolAction::Other
    } else {
        ToolAction::Write { paths }
    }
}

/// Cursor's raw tool calls wrap the input in `args`.
fn tool_args(v: &Value) -> &Value {
    v.get("args").filter(|a| a.is_object()).unwrap_or(v)
}

/// The command under the first of `command_keys`, after `cd DIR && ` for the first non-empty
/// directory under `workdir_keys`.
fn shell_command(v: &Value, command_keys: &[&str], workdir_keys: &[&str]) -> Option<String> {
    let obj = tool_args(v);
    let cmd = command_keys
        .iter()
        .find_map(|k| obj.get(*k).filter(|c| !c.is_null()))?;
    let cmd = match cmd {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Option<Vec<String>> =
                items.iter().map(|i| i.as_str().map(shell_quote)).collect();
            parts?.join(" ")
        }
        _ => return None,
    };
    if cmd.trim().is_empty() {
        return None;
    }
    let dir = workdir_keys.iter().find_map(|k| {
        obj.get(*k)
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
    });
    Some(match dir {
        Some(d) => format!("cd {} && {cmd}", shell_quote(d)),
        None => cmd,
    })
}

/// The paths under `path_keys`, in the lists under `list_keys` and in the file headers of the
/// patches under `patch_keys`, trimmed, without repeats.
fn written_paths(
    v: &Value,
    path_keys: &[&str],
    list_keys: &[&str],
    patch_keys: &[&str],
) -> Vec<String> {
    let obj = tool_args(v);
    // The text-editor tool's `view` command reads.
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
    let collect = |o: &Value, add: &mut dyn FnMut(&str)| {
        for k in path_keys {
            if let Some(s) = o.get(*k).and_then(Value::as_str) {
                add(s);
            }
        }
    };
    collect(obj, &mut add);
    for list in list_keys {
        if let Some(items) = obj.get(*list).and_then(Value::as_array) {
            for item in items {
                match item {
                    Value::String(s) => add(s),
                    Value::Object(_) => collect(item, &mut add),
                    _ => {}
                }
            }
        }
    }
    for key in patch_keys {
        if let Some(text) = obj.get(*key).and_then(Value::as_str) {
            patch_paths(text, &mut add);
        }
    }
    out
}

/// The files a patch names: Codex's `*** Add/Update/Delete File:` and `*** Move to:` headers,
/// unified diffs' `+++` lines (without `b/`; `/dev/null` is no file).
fn patch_paths(text: &str, add: &mut dyn FnMut(&str)) {
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

#[cfg(test)]
mod tests;

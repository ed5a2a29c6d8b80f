//! Every agent backend's tool names and tool-input JSON shapes: which tool uses run a shell
//! command ([`command_of`]) and which files an edit tool writes ([`paths_of`]).
//!
//! Self-contained (serde_json and std only) so that it can move to `ralph-agents`.

use serde_json::Value;

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

/// Quote for POSIX sh where needed (to rebuild a command from an argv array).
pub(super) fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

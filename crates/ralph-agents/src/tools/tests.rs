use super::*;
use crate::{builtin_backend, descriptors, BackendConfig, OutputFormat};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn shell(command: &str) -> ToolAction {
    ToolAction::Shell {
        command: command.to_string(),
    }
}

fn write(paths: &[&str]) -> ToolAction {
    ToolAction::Write {
        paths: strings(paths),
    }
}

/// ralph-core's `guard::SHELL_TOOLS` and `WRITE_TOOLS` before the tables moved here.
const GUARD_SHELL_TOOLS: &[&str] = &[
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
const GUARD_WRITE_TOOLS: &[&str] = &[
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

/// The tables together know exactly the guard's names; any other name they list was already
/// taken by its hint, so the backend-agnostic functions decide as the guard did.
#[test]
fn tables_cover_the_guard_lists_and_no_more() {
    let c = &*CATALOG;
    for (guard, names, hints) in [
        (GUARD_SHELL_TOOLS, &c.shell_names, SHELL_HINTS),
        (GUARD_WRITE_TOOLS, &c.write_names, WRITE_HINTS),
    ] {
        for g in guard {
            assert!(names.iter().any(|n| n.eq_ignore_ascii_case(g)), "{g}");
        }
        for n in names {
            let lname = n.to_ascii_lowercase();
            let listed = guard.contains(&lname.as_str());
            assert!(listed || hints.iter().any(|h| lname.contains(h)), "{n}");
        }
    }
}

/// Every key a backend's table reads is one the backend-agnostic functions read, in the
/// guard's order (ralph-core's `command_of` and `paths_of` before they moved here).
#[test]
fn table_keys_are_the_guard_keys() {
    assert_eq!(
        ANY_SHELL.command,
        ["command", "cmd", "commandLine", "command_line"]
    );
    assert_eq!(
        ANY_SHELL.workdir,
        [
            "workdir",
            "cwd",
            "directory",
            "working_directory",
            "workingDirectory",
            "dir_path"
        ]
    );
    assert_eq!(
        ANY_WRITE.path,
        [
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
            "destination"
        ]
    );
    assert_eq!(ANY_WRITE.lists, ["changes", "edits", "files", "paths"]);
    assert_eq!(
        ANY_WRITE.patch,
        ["patch", "patchText", "patch_text", "input", "diff"]
    );
    assert_eq!(SHELL_HINTS, ["bash", "shell", "terminal", "exec_command"]);
    assert_eq!(
        WRITE_HINTS,
        ["write", "edit", "create", "replace", "patch", "delete", "remove", "rename", "insert"]
    );
    let c = &*CATALOG;
    assert_eq!(c.command, ANY_SHELL.command);
    assert_eq!(c.workdir, ANY_SHELL.workdir);
    assert_eq!(c.path, ANY_WRITE.path);
    assert_eq!(c.lists, ANY_WRITE.lists);
    assert_eq!(c.patch, ANY_WRITE.patch);
}

#[test]
fn every_backend_declares_its_tools() {
    for d in descriptors() {
        let n = d.tools.tools.len();
        match d.name {
            "custom" => assert_eq!(n, 0),
            name => assert!(n > 0, "{name}"),
        }
        for t in d.tools.tools {
            let dup = d
                .tools
                .tools
                .iter()
                .filter(|o| o.name.eq_ignore_ascii_case(t.name));
            assert_eq!(dup.count(), 1, "{}: {}", d.name, t.name);
        }
    }
}

/// ralph-core's `guard_command_of_every_backend`, same cases.
#[test]
fn command_any_every_backend() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        // Claude Code
        (
            "Bash",
            r#"{"command":"git push --force","description":"push"}"#,
            Some("git push --force"),
        ),
        // Codex exec --json items
        (
            "command_execution",
            r#"{"command":"/bin/bash -lc 'git reset --hard'"}"#,
            Some("/bin/bash -lc 'git reset --hard'"),
        ),
        (
            "exec_command",
            r#"{"cmd":"rm -rf /","workdir":"/home/user/project"}"#,
            Some("cd /home/user/project && rm -rf /"),
        ),
        (
            "shell",
            r#"{"command":["bash","-lc","git clean -fdx"]}"#,
            Some("bash -lc 'git clean -fdx'"),
        ),
        // Gemini CLI
        (
            "run_shell_command",
            r#"{"command":"rm -rf ..","description":"x","directory":"sub"}"#,
            Some("cd sub && rm -rf .."),
        ),
        // opencode / Copilot
        (
            "bash",
            r#"{"command":"git push -f","description":"x"}"#,
            Some("git push -f"),
        ),
        // Cursor (tool_call.shellToolCall.args, name stripped of "ToolCall")
        (
            "shell",
            r#"{"command":"rm -rf ~","workingDirectory":""}"#,
            Some("rm -rf ~"),
        ),
        (
            "shellToolCall",
            r#"{"args":{"command":"git reset --hard"}}"#,
            Some("git reset --hard"),
        ),
        // Amp
        (
            "Bash",
            r#"{"cmd":"git reset --hard"}"#,
            Some("git reset --hard"),
        ),
        // Kiro
        ("execute_bash", r#"{"command":"sudo ls"}"#, Some("sudo ls")),
        // Not shell tools
        ("Write", r#"{"file_path":"a","content":"rm -rf /"}"#, None),
        ("Read", r#"{"file_path":"a"}"#, None),
        ("web_search", r#"{"query":"rm -rf /"}"#, None),
        ("Bash", "not json", None),
        ("Bash", r#"{"command":"   "}"#, None),
        ("Bash", r#"{"command":null}"#, None),
    ];
    for (name, input, want) in cases {
        assert_eq!(command_any(name, input).as_deref(), *want, "{name} {input}");
    }
}

/// ralph-core's `guard_paths_of_every_backend`, same cases.
#[test]
fn paths_any_every_backend() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "Write",
            r#"{"content":"x","file_path":"/home/user/project/.git/config"}"#,
            &["/home/user/project/.git/config"],
        ),
        (
            "Edit",
            r#"{"file_path":"ralph.toml","new_string":"b","old_string":"a"}"#,
            &["ralph.toml"],
        ),
        (
            "MultiEdit",
            r#"{"edits":[{"new_string":"b","old_string":"a"}],"file_path":"src/a.rs"}"#,
            &["src/a.rs"],
        ),
        (
            "NotebookEdit",
            r#"{"notebook_path":"n.ipynb"}"#,
            &["n.ipynb"],
        ),
        (
            "write_file",
            r#"{"content":"x","file_path":".ralph/x"}"#,
            &[".ralph/x"],
        ),
        (
            "replace",
            r#"{"file_path":"a.rs","new_string":"b"}"#,
            &["a.rs"],
        ),
        (
            "write",
            r#"{"content":"x","filePath":"/p/ralph.toml"}"#,
            &["/p/ralph.toml"],
        ),
        ("edit", r#"{"filePath":"x.rs","newString":"b"}"#, &["x.rs"]),
        (
            "create",
            r#"{"file_text":"x","path":"/p/hello.txt"}"#,
            &["/p/hello.txt"],
        ),
        (
            "str_replace_editor",
            r#"{"command":"view","path":"a"}"#,
            &[],
        ),
        ("write", r#"{"fileText":"x","path":"c.txt"}"#, &["c.txt"]),
        ("delete", r#"{"path":".git/HEAD"}"#, &[".git/HEAD"]),
        (
            "file_change",
            r#"{"changes":[{"kind":"add","path":"/p/a"},{"kind":"update","path":"/p/b"}]}"#,
            &["/p/a", "/p/b"],
        ),
        (
            "apply_patch",
            r#"{"input":"*** Begin Patch\n*** Update File: ralph.toml\n@@\n-a\n+b\n*** Add File: x.rs\n+x\n*** End Patch\n"}"#,
            &["ralph.toml", "x.rs"],
        ),
        ("edit_file", r#"{"path":"a.rs"}"#, &["a.rs"]),
        ("Read", r#"{"file_path":".git/config"}"#, &[]),
        ("Bash", r#"{"command":"echo > .git/config"}"#, &[]),
        ("TodoWrite", r#"{"todos":[]}"#, &[]),
        ("Write", "nope", &[]),
    ];
    for (name, input, want) in cases {
        assert_eq!(paths_any(name, input), strings(want), "{name} {input}");
    }
}

#[test]
fn paths_any_patches_lists_and_hinted_names() {
    let diff = "--- a/src/x.rs\n+++ b/src/x.rs\t2026-01-01\n@@\n-a\n+b\n--- a/old\n+++ /dev/null\n";
    let input = serde_json::json!({ "diff": diff }).to_string();
    assert_eq!(paths_any("patch", &input), strings(&["src/x.rs"]));
    let input = r#"{"patchText":"*** Delete File: a\n*** Update File: b\n*** Move to: c\n"}"#;
    assert_eq!(paths_any("patch", input), strings(&["a", "b", "c"]));
    assert_eq!(
        paths_any(
            "rename",
            r#"{"path":" a ","new_path":"b","paths":["a","d"]}"#
        ),
        strings(&["a", "b", "d"])
    );
    // Listed by no table, taken by its name.
    assert_eq!(paths_any("fs_remove", r#"{"file":"x"}"#), strings(&["x"]));
    assert_eq!(
        command_any("mcp__sandbox__bash", r#"{"command":"ls"}"#).as_deref(),
        Some("ls")
    );
    assert_eq!(command_any("Task", r#"{"command":"ls"}"#), None);
}

/// The tool uses of ralph-core's `guard_tool_uses_are_checked_end_to_end`.
#[test]
fn action_any_of_guarded_tool_uses() {
    let cases: &[(&str, &str, ToolAction)] = &[
        (
            "Bash",
            r#"{"command":"git push --force"}"#,
            shell("git push --force"),
        ),
        (
            "command_execution",
            r#"{"command":"/bin/bash -lc 'cd /home/user/project && git clean -fdx'"}"#,
            shell("/bin/bash -lc 'cd /home/user/project && git clean -fdx'"),
        ),
        (
            "run_shell_command",
            r#"{"command":"rm -rf ..","directory":"/tmp/x"}"#,
            shell("cd /tmp/x && rm -rf .."),
        ),
        (
            "Write",
            r#"{"file_path":"/home/user/project/.git/config","content":"x"}"#,
            write(&["/home/user/project/.git/config"]),
        ),
        (
            "Edit",
            r#"{"file_path":"ralph.toml"}"#,
            write(&["ralph.toml"]),
        ),
        ("Read", r#"{"file_path":"ralph.toml"}"#, ToolAction::Other),
        ("TodoWrite", r#"{"todos":[]}"#, ToolAction::Other),
    ];
    for (name, input, want) in cases {
        assert_eq!(&action_any(name, input), want, "{name} {input}");
    }
}

/// Each backend reads its own tools only, with its own keys.
#[test]
fn backends_read_their_own_tools() {
    let cfg = BackendConfig::default();
    let action = |backend: &str, name: &str, input: &str| {
        let b = builtin_backend(backend, &cfg).map(|b| b.tool_action(name, input));
        b.unwrap_or_else(|| panic!("{backend}"))
    };
    let cases: &[(&str, &str, &str, ToolAction)] = &[
        ("claude", "Bash", r#"{"command":"ls"}"#, shell("ls")),
        ("claude", "bash", r#"{"command":"ls"}"#, shell("ls")),
        ("claude", "shell", r#"{"command":"ls"}"#, ToolAction::Other),
        ("claude", "Write", r#"{"file_path":"a"}"#, write(&["a"])),
        ("claude", "Write", r#"{"path":"a"}"#, ToolAction::Other),
        (
            "claude",
            "NotebookEdit",
            r#"{"notebook_path":"n.ipynb"}"#,
            write(&["n.ipynb"]),
        ),
        (
            "amp",
            "Bash",
            r#"{"cmd":"ls","cwd":"/w"}"#,
            shell("cd /w && ls"),
        ),
        ("amp", "create_file", r#"{"path":"a"}"#, write(&["a"])),
        (
            "codex",
            "exec_command",
            r#"{"cmd":"ls","workdir":"/w"}"#,
            shell("cd /w && ls"),
        ),
        (
            "codex",
            "shell",
            r#"{"command":["ls","-l"]}"#,
            shell("ls -l"),
        ),
        (
            "codex",
            "file_change",
            r#"{"changes":[{"path":"/p/a","kind":"add"}]}"#,
            write(&["/p/a"]),
        ),
        (
            "codex",
            "apply_patch",
            r#"{"input":"*** Add File: x.rs\n+x\n"}"#,
            write(&["x.rs"]),
        ),
        (
            "gemini",
            "run_shell_command",
            r#"{"command":"ls","directory":"sub"}"#,
            shell("cd sub && ls"),
        ),
        (
            "gemini",
            "write_file",
            r#"{"file_path":"a"}"#,
            write(&["a"]),
        ),
        ("gemini", "Bash", r#"{"command":"ls"}"#, ToolAction::Other),
        ("opencode", "write", r#"{"filePath":"a"}"#, write(&["a"])),
        (
            "opencode",
            "patch",
            r#"{"patchText":"*** Update File: a\n"}"#,
            write(&["a"]),
        ),
        ("copilot", "create", r#"{"path":"a"}"#, write(&["a"])),
        ("copilot", "bash", r#"{"command":"ls"}"#, shell("ls")),
        (
            "cursor",
            "shell",
            r#"{"command":"ls","workingDirectory":"/w"}"#,
            shell("cd /w && ls"),
        ),
        (
            "cursor",
            "shellToolCall",
            r#"{"args":{"command":"ls"}}"#,
            shell("ls"),
        ),
        ("cursor", "delete", r#"{"path":"a"}"#, write(&["a"])),
        ("kiro", "execute_bash", r#"{"command":"ls"}"#, shell("ls")),
        (
            "kiro",
            "fs_write",
            r#"{"command":"create","path":"a"}"#,
            write(&["a"]),
        ),
        ("custom", "Bash", r#"{"command":"ls"}"#, ToolAction::Other),
        ("claude", "Bash", "not json", ToolAction::Other),
    ];
    for (backend, name, input, want) in cases {
        assert_eq!(
            &action(backend, name, input),
            want,
            "{backend} {name} {input}"
        );
    }
}

/// A custom command reads the tools of the CLI whose output format it prints.
#[test]
fn custom_reads_the_tools_of_its_output_format() {
    let custom = |output: OutputFormat| {
        let cfg = BackendConfig {
            output,
            ..BackendConfig::default()
        };
        builtin_backend("custom", &cfg).unwrap_or_else(|| panic!("custom"))
    };
    let b = custom(OutputFormat::CodexJson);
    assert_eq!(
        b.tool_action("exec_command", r#"{"cmd":"ls"}"#),
        shell("ls")
    );
    assert_eq!(
        b.tool_action("Bash", r#"{"command":"ls"}"#),
        ToolAction::Other
    );
    let b = custom(OutputFormat::ClaudeStreamJson);
    assert_eq!(b.tool_action("Bash", r#"{"command":"ls"}"#), shell("ls"));
    let b = custom(OutputFormat::Text);
    assert_eq!(b.tools(), &ToolTable::EMPTY);
    assert_eq!(
        b.tool_action("Bash", r#"{"command":"ls"}"#),
        ToolAction::Other
    );
}

//! The built-in command rules (ids and what they block) and the prefix deny list handed to
//! agents that have one.

use ralph_agents::DenyRule;

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
        id: "pipe-to-shell",
        description: "runs a script computed by a pipeline, which cannot be checked before it runs",
    },
    BuiltinRule {
        id: "unresolved-program",
        description:
            "runs a program that cannot be known before it runs, with destructive arguments",
    },
    BuiltinRule {
        id: "kill-all",
        description:
            "signals every process (kill -1, killall5, pkill -u) or shuts the machine down",
    },
    BuiltinRule {
        id: "kill-ralph",
        description: "kills ralph or the agent running this command",
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

pub(super) fn description(id: &str) -> &'static str {
    RULES
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.description)
        .unwrap_or("is blocked")
}

/// Command prefixes passed to agents with a deny list (Claude `--disallowedTools`, Copilot
/// `--deny-tool`) through `Backend::deny_args`. Defense in depth: a prefix list cannot express
/// what [`CommandGuard`](super::CommandGuard) checks, and agents match it their own way.
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

//! `custom`: any command, argv from `agent.command`, the prompt as `agent.prompt_via` says and
//! the output read by the parser `agent.output` names.

use crate::backend::{
    Backend, BackendConfig, CommandContext, CommandSpec, PermissionMode, PromptVia,
};
use crate::parser::StreamParser;
use crate::registry::{BackendDescriptor, Install};
use crate::tools::ToolTable;

/// Registry entry. What the command needs (program, credentials, hosts, state) is the user's
/// business; the prompt goes where `agent.prompt_via` says.
pub(crate) static DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: "custom",
    aliases: &[],
    program: "",
    install: Install::UserCommand,
    auth_env: &[],
    api_hosts: &[],
    api_host_setting: None,
    home_state: &[],
    state_env: &[],
    prompt: PromptVia::Stdin,
    auto: false,
    output: None,
    tools: ToolTable::EMPTY,
    new: |config| Box::new(CustomBackend::new(config)),
};

/// Any command; argv from `agent.command`.
#[derive(Debug, Clone)]
pub struct CustomBackend {
    config: BackendConfig,
}

impl CustomBackend {
    pub fn new(config: BackendConfig) -> Self {
        CustomBackend { config }
    }
}

/// The placeholder in a custom command that `prompt_via = "file"` replaces with the path of the
/// archived prompt.
pub const PROMPT_FILE_PLACEHOLDER: &str = "{prompt_file}";

impl Backend for CustomBackend {
    fn descriptor(&self) -> &'static BackendDescriptor {
        &DESCRIPTOR
    }
    fn program(&self) -> &str {
        self.config
            .command
            .first()
            .map(String::as_str)
            .unwrap_or(DESCRIPTOR.program)
    }
    /// Text and Cursor's stream carry no usage; every other parser reads some.
    fn usage_in_output(&self) -> bool {
        !matches!(
            self.config.output,
            crate::OutputFormat::Text | crate::OutputFormat::CursorStreamJson
        )
    }
    /// A custom command's permissions are whatever its own argv says.
    fn supports_permission(&self, mode: &PermissionMode) -> bool {
        matches!(mode, PermissionMode::Full)
    }
    fn command(&self, ctx: &CommandContext<'_>) -> CommandSpec {
        let mut args: Vec<String> = self.config.command.iter().skip(1).cloned().collect();
        args.extend(ctx.extra_args.iter().cloned());
        let stdin = match self.config.prompt_via {
            PromptVia::Stdin => Some(ctx.prompt.as_bytes().to_vec()),
            PromptVia::Arg => {
                args.push(ctx.prompt.to_string());
                None
            }
            PromptVia::File => {
                let path = ctx.prompt_path.to_string_lossy();
                let mut replaced = false;
                for a in &mut args {
                    if a.contains(PROMPT_FILE_PLACEHOLDER) {
                        *a = a.replace(PROMPT_FILE_PLACEHOLDER, &path);
                        replaced = true;
                    }
                }
                if !replaced {
                    args.push(path.into_owned());
                }
                None
            }
        };
        CommandSpec {
            program: self.program().to_string(),
            args,
            env: Vec::new(),
            stdin,
        }
    }
    fn parser(&self) -> Box<dyn StreamParser> {
        self.config.output.parser()
    }
    /// The tools of the CLI whose stream `agent.output` names (none for text).
    fn tools(&self) -> &'static ToolTable {
        match crate::registry::by_output(self.config.output) {
            Some(d) => &d.tools,
            None => &ToolTable::EMPTY,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn custom_without_command_has_empty_program() {
        let b = CustomBackend::new(BackendConfig::default());
        assert_eq!(b.program(), "");
        let ctx = CommandContext {
            prompt: "do the thing\n",
            prompt_path: Path::new("/p/.ralph/runs/r1/0001/prompt.md"),
            model: None,
            extra_args: &[],
            is_root: false,
            scratch_dir: Path::new("/tmp/run/0001"),
        };
        assert_eq!(b.command(&ctx).program, "");
    }
}

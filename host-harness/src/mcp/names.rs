//! Tool names: names that model APIs accept (the default), or the command names as they are
//! (`--tool-names exact`: `theta.ondemand.chat`).
//!
//! OpenAI and Anthropic only take tool names matching `^[a-zA-Z0-9_-]{1,64}$`, and some MCP clients
//! refuse a whole tool list with one name outside it. So by default every other character becomes `_`
//! (`theta_ondemand_chat`) and calls are mapped back to the command.
//! The official server's four names are already safe, so they are the same in both modes. Two commands
//! that would get the same safe name, or a name longer than 64 characters, stop the server at startup.

use std::collections::HashMap;

/// Longest tool name the model APIs accept.
pub const MAX_SAFE_LEN: usize = 64;

/// How commands are named as tools (`theta-host mcp --tool-names`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ToolNames {
    /// Only [A-Za-z0-9_-], e.g. `theta_ondemand_chat` (what model APIs and strict clients accept).
    #[default]
    Safe,
    /// The command names, e.g. `theta.ondemand.chat` (opt-in; some clients reject these names).
    Exact,
}

/// `name` with every character outside [A-Za-z0-9_-] replaced by `_`.
pub fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether model APIs accept `name` as a tool name.
pub fn is_safe(name: &str) -> bool {
    (1..=MAX_SAFE_LEN).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The tool name of every command, in order; an error if two commands would share a tool name, or (in
/// safe mode) if a name cannot be made acceptable.
pub fn tool_names<'a>(
    commands: impl IntoIterator<Item = &'a str>,
    mode: ToolNames,
) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut owner: HashMap<String, &str> = HashMap::new();
    for command in commands {
        let tool = match mode {
            ToolNames::Exact => command.to_owned(),
            ToolNames::Safe => safe_name(command),
        };
        if mode == ToolNames::Safe && !is_safe(&tool) {
            anyhow::bail!(
                "--tool-names safe: the command `{command}` would be the tool `{tool}` ({} characters), \
                 but tool names must have 1 to {MAX_SAFE_LEN}; use --tool-names exact",
                tool.len()
            );
        }
        if let Some(other) = owner.insert(tool.clone(), command) {
            anyhow::bail!(
                "--tool-names {}: the commands `{other}` and `{command}` would both be the tool `{tool}`; \
                 use --tool-names exact",
                match mode {
                    ToolNames::Exact => "exact",
                    ToolNames::Safe => "safe",
                }
            );
        }
        names.push(tool);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::official::OFFICIAL_TOOLS;

    #[test]
    fn safe_names_keep_only_the_allowed_characters() {
        assert_eq!(safe_name("theta.ondemand.chat"), "theta_ondemand_chat");
        assert_eq!(safe_name("a/b c:d-e_F9"), "a_b_c_d-e_F9");
        assert_eq!(safe_name("é"), "_");
        assert!(is_safe("theta_ondemand_chat"));
        assert!(!is_safe("theta.ondemand.chat"));
        assert!(!is_safe(""));
        assert!(!is_safe(&"x".repeat(65)));
        assert!(is_safe(&"x".repeat(64)));
    }

    #[test]
    fn official_names_are_the_same_in_both_modes() {
        for mode in [ToolNames::Exact, ToolNames::Safe] {
            assert_eq!(tool_names(OFFICIAL_TOOLS, mode).unwrap(), OFFICIAL_TOOLS);
        }
    }

    #[test]
    fn collisions_and_overlong_names_are_refused_in_safe_mode() {
        let names = ["list_services", "theta.ondemand.chat"];
        assert_eq!(
            tool_names(names, ToolNames::Safe).unwrap(),
            ["list_services", "theta_ondemand_chat"]
        );
        assert_eq!(
            tool_names(names, ToolNames::Exact).unwrap(),
            ["list_services", "theta.ondemand.chat"]
        );
        let clash = tool_names(["theta.video.list", "theta_video.list"], ToolNames::Safe)
            .unwrap_err()
            .to_string();
        assert!(
            clash.contains("`theta.video.list` and `theta_video.list`"),
            "{clash}"
        );
        assert!(clash.contains("`theta_video_list`"), "{clash}");
        // Exact names do not clash.
        assert!(tool_names(["theta.video.list", "theta_video.list"], ToolNames::Exact).is_ok());
        let long = format!("theta.{}", "x".repeat(60));
        let err = tool_names([long.as_str()], ToolNames::Safe)
            .unwrap_err()
            .to_string();
        assert!(err.contains("66 characters"), "{err}");
        assert!(tool_names([long.as_str()], ToolNames::Exact).is_ok());
    }
}

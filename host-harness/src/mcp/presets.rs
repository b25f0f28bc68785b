//! Which commands are served as tools (`theta-host mcp --tools`): `all` (the default), `official` (the
//! official on-demand server's four tools, for the smallest `tools/list`), or a comma-separated list of
//! families. A tenant's grants narrow the list further.

use super::official::OFFICIAL_TOOLS;
use std::str::FromStr;

/// The command families, as `--tools` names them.
pub const FAMILIES: [&str; 7] = [
    "ondemand",
    "deployments",
    "inference",
    "agents",
    "video",
    "billing",
    "auth",
];

/// The family of a command: the official four and `theta.ondemand.*` are `ondemand`, `theta.ai.*` is
/// `agents`, `theta.<family>.*` the family itself; `None` for a command of no known family.
pub fn family(command: &str) -> Option<&'static str> {
    if OFFICIAL_TOOLS.contains(&command) {
        return Some("ondemand");
    }
    let second = command.strip_prefix("theta.")?.split('.').next()?;
    let name = if second == "ai" { "agents" } else { second };
    FAMILIES.iter().copied().find(|f| *f == name)
}

/// The `--tools` selection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ToolSet {
    /// Every command the plugin describes.
    #[default]
    All,
    /// The official on-demand server's four tools.
    Official,
    /// The commands of these families.
    Families(Vec<&'static str>),
}

impl ToolSet {
    /// Whether the command is served as a tool.
    pub fn includes(&self, command: &str) -> bool {
        match self {
            ToolSet::All => true,
            ToolSet::Official => OFFICIAL_TOOLS.contains(&command),
            ToolSet::Families(list) => family(command).is_some_and(|f| list.contains(&f)),
        }
    }
}

impl FromStr for ToolSet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "all" => return Ok(ToolSet::All),
            "official" => return Ok(ToolSet::Official),
            _ => {}
        }
        let mut list = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some(f) = FAMILIES.iter().copied().find(|f| *f == part) else {
                return Err(format!(
                    "unknown tool family `{part}`: expected official, all, or a comma-separated list of {}",
                    FAMILIES.join(", ")
                ));
            };
            if !list.contains(&f) {
                list.push(f);
            }
        }
        if list.is_empty() {
            return Err(format!(
                "expected official, all, or a comma-separated list of {}",
                FAMILIES.join(", ")
            ));
        }
        Ok(ToolSet::Families(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_presets() {
        assert_eq!(family("infer"), Some("ondemand"));
        assert_eq!(family("theta.ondemand.chat"), Some("ondemand"));
        assert_eq!(family("theta.ai.agent.create"), Some("agents"));
        assert_eq!(family("theta.video.list"), Some("video"));
        assert_eq!(family("theta.deployments.list"), Some("deployments"));
        assert_eq!(family("other"), None);
        let set: ToolSet = "video, billing".parse().unwrap();
        assert!(set.includes("theta.video.list") && set.includes("theta.billing.balance"));
        assert!(!set.includes("infer"));
        assert!(
            "official"
                .parse::<ToolSet>()
                .unwrap()
                .includes("get_upload_url")
        );
        assert!(
            !"official"
                .parse::<ToolSet>()
                .unwrap()
                .includes("theta.ondemand.chat")
        );
        assert!("all".parse::<ToolSet>().unwrap().includes("anything"));
        let err = "video,music".parse::<ToolSet>().unwrap_err();
        assert!(
            err.contains("`music`") && err.contains("deployments"),
            "{err}"
        );
        assert!("".parse::<ToolSet>().is_err());
    }
}

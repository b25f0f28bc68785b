//! `theta-host setup`: asks for each family's keys (secrets with hidden input: nothing echoed or
//! logged), checks each family with one free read through the sandboxed plugin and the host's own
//! policy, and writes the env file (`.env.local`) with mode 0600. Values already in the file are kept
//! unless a new one is given; other lines (comments, other settings) stay as they are.
//! `--non-interactive` takes the values from the environment instead of asking.

use crate::bindings::ThetaError;
use crate::config::HostConfig;
use crate::runtime::Runtime;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One value setup asks for.
struct Question {
    var: &'static str,
    what: &'static str,
    secret: bool,
}

const QUESTIONS: [Question; 8] = [
    Question {
        var: "THETA_ONDEMAND_API_TOKEN",
        what: "on-demand models: access token from the EdgeCloud dashboard",
        secret: true,
    },
    Question {
        var: "THETA_EC_API_KEY",
        what: "deployments, AI agents, billing: project API key",
        secret: true,
    },
    Question {
        var: "THETA_EC_PROJECT_ID",
        what: "deployments, AI agents: project id (prj_...)",
        secret: false,
    },
    Question {
        var: "THETA_ORG_ID",
        what: "billing: organisation id (org_...)",
        secret: false,
    },
    Question {
        var: "THETA_VIDEO_SA_ID",
        what: "video: service account id (srvacc_...)",
        secret: false,
    },
    Question {
        var: "THETA_VIDEO_SA_SECRET",
        what: "video: service account secret",
        secret: true,
    },
    Question {
        var: "THETA_INFERENCE_ENDPOINT",
        what: "dedicated inference: endpoint URL (https://...)",
        secret: false,
    },
    Question {
        var: "THETA_INFERENCE_AUTH_TOKEN",
        what: "dedicated inference: bearer token",
        secret: true,
    },
];

/// One free read per family that proves its credentials (command, arguments, the variables it needs).
const CHECKS: [(&str, &str, &str, &[&str]); 5] = [
    // An unknown request id: 404 with a good token, 401 with a bad one; nothing is created or paid.
    (
        "on-demand",
        "get_request_status",
        r#"{"request_id":"theta-setup-check"}"#,
        &["THETA_ONDEMAND_API_TOKEN"],
    ),
    (
        "deployments",
        "theta.deployments.list",
        "{}",
        &["THETA_EC_API_KEY", "THETA_EC_PROJECT_ID"],
    ),
    (
        "billing",
        "theta.billing.balance",
        "{}",
        &["THETA_EC_API_KEY", "THETA_ORG_ID"],
    ),
    (
        "video",
        "theta.video.list",
        "{}",
        &["THETA_VIDEO_SA_ID", "THETA_VIDEO_SA_SECRET"],
    ),
    (
        "dedicated inference",
        "theta.inference.ready",
        "{}",
        &["THETA_INFERENCE_ENDPOINT"],
    ),
];

/// How one family's check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Ok,
    NotConfigured,
    Refused(String),
}

/// Runs setup: gathers values (asking, or from `env` with `interactive` false), checks them, writes
/// `env_file`. Returns the checks, by family; the caller prints them.
pub async fn run(
    env_file: &Path,
    interactive: bool,
    env: &BTreeMap<String, String>,
    upstream: crate::net::Upstream,
    wasm: &Path,
) -> anyhow::Result<Vec<(&'static str, Check)>> {
    let mut values = read_env_file(env_file)?;
    for q in &QUESTIONS {
        let new = if interactive {
            ask(q, values.contains_key(q.var))?
        } else {
            env.get(q.var).cloned()
        };
        if let Some(v) = new.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            // Written single-quoted (no escapes, no interpolation), so a quote cannot be kept as is.
            if v.contains(['\n', '\r', '\'']) {
                anyhow::bail!(
                    "{}: the value has a line break or a single quote, which the env file cannot hold unchanged; nothing was written",
                    q.var
                );
            }
            values.insert(q.var.to_owned(), v);
        }
    }
    // The checks run with exactly what will be written (plus non-secret settings of the environment).
    let mut vars: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("THETA_") && !QUESTIONS.iter().any(|q| q.var == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
    let map: std::collections::HashMap<String, String> = vars.into_iter().collect();
    let mut cfg = HostConfig::from_vars(&map)?;
    cfg.upstream = upstream;
    cfg.audit_in_memory = true;
    let rt = Runtime::new(cfg, wasm).await?;
    let mut checks = Vec::new();
    for (family, command, args, needs) in CHECKS {
        let check = if needs.iter().any(|v| !values.contains_key(*v)) {
            Check::NotConfigured
        } else {
            classify(family, rt.invoke(command, args, Arc::new(|_| {})).await?)
        };
        checks.push((family, check));
    }
    write_env_file(env_file, &values)?;
    Ok(checks)
}

fn classify(family: &str, outcome: crate::runtime::CallOutput) -> Check {
    match outcome {
        Ok(_) => Check::Ok,
        // The on-demand check asks for a request that does not exist: a 404 means the token worked.
        Err(ThetaError::Upstream(u)) if family == "on-demand" && u.status == 404 => Check::Ok,
        Err(ThetaError::MissingCredential(m)) => Check::Refused(format!("missing {}", m.variable)),
        Err(e) => Check::Refused(crate::report::error_text(&e)),
    }
}

/// Asks for one value; empty input keeps the current one. Secrets are read without echo.
fn ask(q: &Question, present: bool) -> anyhow::Result<Option<String>> {
    let keep = if present {
        " [set; Enter keeps it]"
    } else {
        " [Enter skips]"
    };
    let prompt = format!("{} ({}){keep}: ", q.var, q.what);
    let value = if q.secret {
        rpassword::prompt_password(prompt).context("reading a hidden value from the terminal")?
    } else {
        eprint!("{prompt}");
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading from stdin")?;
        line
    };
    Ok(Some(value))
}

/// `KEY=value` lines of an env file (others are kept verbatim by [`write_env_file`]).
fn read_env_file(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let mut out = BTreeMap::new();
    for item in
        dotenvy::from_path_iter(path).with_context(|| format!("reading {}", path.display()))?
    {
        let (k, v) = item.with_context(|| format!("{} is not a valid env file", path.display()))?;
        out.insert(k, v);
    }
    Ok(out)
}

/// Rewrites the lines of the variables setup knows, appends new ones, keeps every other line, and
/// replaces the file atomically with mode 0600 (created so from the start: never readable by others).
fn write_env_file(path: &Path, values: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let old = if path.exists() {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    } else {
        String::new()
    };
    let known = |line: &str| {
        let key = line.trim_start().trim_start_matches("export ");
        QUESTIONS.iter().find(|q| {
            key.strip_prefix(q.var)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
    };
    let mut written = Vec::new();
    let mut out = String::new();
    for line in old.lines() {
        match known(line) {
            Some(q) if !written.contains(&q.var) => {
                if let Some(v) = values.get(q.var) {
                    out.push_str(&format!("{}={}\n", q.var, quote(v)));
                }
                written.push(q.var);
            }
            Some(_) => {} // a repeated line: the value is written once
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for q in &QUESTIONS {
        if !written.contains(&q.var)
            && let Some(v) = values.get(q.var)
        {
            out.push_str(&format!("{}={}\n", q.var, quote(v)));
        }
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".theta-setup.{}.tmp", std::process::id()));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(out.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// A value as dotenv reads it back unchanged (single quotes: no escapes, no interpolation; values
/// with a quote or line break are refused before this).
fn quote(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:/@+".contains(c))
    {
        v.to_owned()
    } else {
        format!("'{v}'")
    }
}

/// The checks as lines for the terminal (no value is ever printed).
pub fn table(checks: &[(&str, Check)], env_file: &Path) -> String {
    let mut out = format!("wrote {} (mode 0600)\n", env_file.display());
    for (family, check) in checks {
        let line = match check {
            Check::Ok => "ok".to_owned(),
            Check::NotConfigured => "not configured".to_owned(),
            Check::Refused(why) => format!("FAILED: {}", crate::text::for_terminal(why)),
        };
        out.push_str(&format!("  {family:<20} {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_env_file_keeps_other_lines_and_unreplaced_values_and_is_private() {
        let dir = std::env::temp_dir().join(format!("theta-setup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env.local");
        std::fs::write(
            &path,
            "# mine\nTHETA_EC_PROJECT_ID=prj_keep\nOTHER=1\nTHETA_ONDEMAND_API_TOKEN=old\n",
        )
        .unwrap();
        let mut values = read_env_file(&path).unwrap();
        values.insert("THETA_ONDEMAND_API_TOKEN".into(), "new $token".into());
        values.insert("THETA_ORG_ID".into(), "org_1".into());
        write_env_file(&path, &values).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# mine\nTHETA_EC_PROJECT_ID=prj_keep\nOTHER=1\nTHETA_ONDEMAND_API_TOKEN='new $token'\nTHETA_ORG_ID=org_1\n"
        );
        let back = read_env_file(&path).unwrap();
        assert_eq!(back["THETA_ONDEMAND_API_TOKEN"], "new $token");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Host-side credentials, one set per API family, injected at the HTTP boundary.
//!
//! Values live only here: `Secret` has no `Display`, its `Debug` is redacted, and nothing in this crate
//! passes a value to the guest, a log line, an error or the audit trail.

use std::collections::BTreeMap;
use std::fmt;

/// A credential value. Deliberately not `Display`; `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the one place that builds a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The API families, each with its own credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// `ondemand.thetaedgecloud.com`: `Authorization: Bearer`.
    OnDemand,
    /// `controller.thetaedgecloud.com` / `api.thetaedgecloud.com`: `x-api-key`.
    Controller,
    /// A dedicated deployment's endpoint (`THETA_INFERENCE_ENDPOINT`): Bearer or Basic.
    DedicatedInference,
    /// The Theta Video API (`api.thetavideoapi.com`): `x-tva-sa-id` + `x-tva-sa-secret`.
    Video,
    /// Hosts that need no credential (e.g. output buckets).
    Public,
}

impl Family {
    pub fn label(self) -> &'static str {
        match self {
            Family::OnDemand => "on-demand",
            Family::Controller => "controller",
            Family::DedicatedInference => "dedicated-inference",
            Family::Video => "video",
            Family::Public => "public",
        }
    }
}

/// Names a credential may be configured under, first match wins.
pub const ONDEMAND_TOKEN_VARS: [&str; 3] = [
    "THETA_ONDEMAND_API_TOKEN",
    "THETA_ONDEMAND_API_KEY",
    "THETA_API_KEY",
];
pub const CONTROLLER_KEY_VAR: &str = "THETA_EC_API_KEY";
pub const INFERENCE_TOKEN_VAR: &str = "THETA_INFERENCE_AUTH_TOKEN";
pub const INFERENCE_USER_VAR: &str = "THETA_INFERENCE_AUTH_USER";
pub const INFERENCE_PASS_VAR: &str = "THETA_INFERENCE_AUTH_PASS";
pub const VIDEO_ID_VAR: &str = "THETA_VIDEO_SA_ID";
pub const VIDEO_SECRET_VAR: &str = "THETA_VIDEO_SA_SECRET";

/// Every credential variable the host reads. None of them is ever passed to the guest.
pub const SECRET_VARS: [&str; 8] = [
    "THETA_ONDEMAND_API_TOKEN",
    "THETA_ONDEMAND_API_KEY",
    "THETA_API_KEY",
    "THETA_EC_API_KEY",
    "THETA_INFERENCE_AUTH_TOKEN",
    "THETA_INFERENCE_AUTH_USER",
    "THETA_INFERENCE_AUTH_PASS",
    "THETA_VIDEO_SA_SECRET",
];

/// How a family's credential goes on the wire.
#[derive(Clone, Debug)]
pub enum Injection {
    Bearer(Secret),
    ApiKey(Secret),
    Basic {
        user: Secret,
        pass: Secret,
    },
    /// Service-account id and secret headers (Theta Video API).
    VideoServiceAccount {
        id: Secret,
        secret: Secret,
    },
}

/// A configured credential: where it came from (a variable name) and how to inject it.
#[derive(Clone, Debug)]
pub struct Credential {
    pub variable: &'static str,
    pub injection: Injection,
}

/// The credentials the host holds, keyed by family.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    by_family: BTreeMap<Family, Credential>,
}

impl Credentials {
    /// Reads every family's credential from a variable lookup (environment merged with `.env.local`).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Self {
        let non_empty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut by_family = BTreeMap::new();
        if let Some((variable, value)) = ONDEMAND_TOKEN_VARS
            .iter()
            .find_map(|name| non_empty(name).map(|v| (*name, v)))
        {
            by_family.insert(
                Family::OnDemand,
                Credential {
                    variable,
                    injection: Injection::Bearer(Secret::new(value.trim())),
                },
            );
        }
        if let Some(value) = non_empty(CONTROLLER_KEY_VAR) {
            by_family.insert(
                Family::Controller,
                Credential {
                    variable: CONTROLLER_KEY_VAR,
                    injection: Injection::ApiKey(Secret::new(value.trim())),
                },
            );
        }
        if let Some(value) = non_empty(INFERENCE_TOKEN_VAR) {
            by_family.insert(
                Family::DedicatedInference,
                Credential {
                    variable: INFERENCE_TOKEN_VAR,
                    injection: Injection::Bearer(Secret::new(value.trim())),
                },
            );
        } else if let (Some(user), Some(pass)) =
            (non_empty(INFERENCE_USER_VAR), non_empty(INFERENCE_PASS_VAR))
        {
            by_family.insert(
                Family::DedicatedInference,
                Credential {
                    variable: INFERENCE_USER_VAR,
                    injection: Injection::Basic {
                        user: Secret::new(user),
                        pass: Secret::new(pass),
                    },
                },
            );
        }
        if let (Some(id), Some(secret)) = (non_empty(VIDEO_ID_VAR), non_empty(VIDEO_SECRET_VAR)) {
            by_family.insert(
                Family::Video,
                Credential {
                    variable: VIDEO_SECRET_VAR,
                    injection: Injection::VideoServiceAccount {
                        id: Secret::new(id.trim()),
                        secret: Secret::new(secret.trim()),
                    },
                },
            );
        }
        Self { by_family }
    }

    pub fn get(&self, family: Family) -> Option<&Credential> {
        self.by_family.get(&family)
    }

    pub fn insert(&mut self, family: Family, credential: Credential) {
        self.by_family.insert(family, credential);
    }

    /// Names of the configured credential variables (never values), for the guest and `theta-host auth`.
    pub fn configured_variables(&self) -> Vec<&'static str> {
        self.by_family.values().map(|c| c.variable).collect()
    }

    /// Every configured secret value, for scrubbing text that must never carry one.
    pub fn secret_values(&self) -> Vec<&str> {
        self.by_family
            .values()
            .flat_map(|c| match &c.injection {
                Injection::Bearer(s) | Injection::ApiKey(s) => vec![s.expose()],
                Injection::Basic { user, pass } => vec![user.expose(), pass.expose()],
                Injection::VideoServiceAccount { secret, .. } => vec![secret.expose()],
            })
            .filter(|v| v.len() >= 4)
            .collect()
    }

    /// Replaces any configured secret value inside `text` with `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        self.secret_values()
            .into_iter()
            .fold(text.to_owned(), |acc, secret| {
                acc.replace(secret, "[redacted]")
            })
    }
}

/// A short, safe description of a configured value: its length only.
pub fn describe_secret(secret: &Secret) -> String {
    format!("set ({} chars)", secret.expose().chars().count())
}

/// The variable a family's credential is configured under, for error messages.
pub fn variable_for(family: Family) -> &'static str {
    match family {
        Family::OnDemand => ONDEMAND_TOKEN_VARS[0],
        Family::Controller => CONTROLLER_KEY_VAR,
        Family::DedicatedInference => INFERENCE_TOKEN_VAR,
        Family::Video => VIDEO_SECRET_VAR,
        Family::Public => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn first_configured_name_wins_and_blank_values_count_as_unset() {
        let creds = Credentials::from_lookup(&lookup(&[
            ("THETA_ONDEMAND_API_TOKEN", "  "),
            ("THETA_API_KEY", "tok-from-mcp-name"),
        ]));
        let c = creds.get(Family::OnDemand).expect("configured");
        assert_eq!(c.variable, "THETA_API_KEY");
        assert!(creds.get(Family::Controller).is_none());
    }

    #[test]
    fn debug_and_scrub_never_show_values() {
        let creds = Credentials::from_lookup(&lookup(&[
            ("THETA_ONDEMAND_API_TOKEN", "very-secret-token"),
            ("THETA_EC_API_KEY", "another-secret"),
        ]));
        let dbg = format!("{creds:?}");
        assert!(!dbg.contains("very-secret-token"), "{dbg}");
        assert!(!dbg.contains("another-secret"), "{dbg}");
        assert_eq!(
            creds.scrub("Bearer very-secret-token and another-secret"),
            "Bearer [redacted] and [redacted]"
        );
        assert_eq!(
            creds.configured_variables(),
            vec!["THETA_ONDEMAND_API_TOKEN", "THETA_EC_API_KEY"]
        );
    }
}

/// One row of `theta-host auth`: a family, whether its credential is configured, and under which name.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct StatusRow {
    pub family: &'static str,
    pub status: &'static str,
    pub detail: String,
}

/// The credential status of every family; names only, never values.
pub fn status_rows(creds: &Credentials) -> Vec<StatusRow> {
    let row = |family: Family, expected: &str| match creds.get(family) {
        Some(c) => StatusRow {
            family: family.label(),
            status: "configured",
            detail: format!(
                "{} (injected by the host; the plugin never sees it)",
                c.variable
            ),
        },
        None => StatusRow {
            family: family.label(),
            status: "missing",
            detail: format!("set {expected}"),
        },
    };
    vec![
        row(
            Family::OnDemand,
            "THETA_ONDEMAND_API_TOKEN (or THETA_ONDEMAND_API_KEY / THETA_API_KEY)",
        ),
        row(
            Family::Controller,
            "THETA_EC_API_KEY (and THETA_EC_PROJECT_ID)",
        ),
        row(
            Family::DedicatedInference,
            "THETA_INFERENCE_AUTH_TOKEN or THETA_INFERENCE_AUTH_USER + _PASS",
        ),
        row(Family::Video, "THETA_VIDEO_SA_ID and THETA_VIDEO_SA_SECRET"),
    ]
}

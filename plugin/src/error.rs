//! The domain error: one case per WIT `theta-error` case, so the glue maps it 1:1, plus its JSON form
//! for hosts and logs that want text.

use serde::Serialize;

/// The request that would have been sent, with every secret redacted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestPreview {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The JSON body as text.
    pub body: Option<String>,
}

/// Why a command failed; every case says what the caller can do next.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ThetaError {
    InvalidArgument {
        field: String,
        reason: String,
    },
    MissingCredential {
        variable: String,
        hint: String,
    },
    Denied {
        reason: String,
    },
    DryRun {
        preview: RequestPreview,
    },
    Upstream {
        status: u16,
        message: String,
        retriable: bool,
    },
    CapacityExhausted {
        service: String,
        attempts: u32,
        message: String,
    },
    Timeout {
        message: String,
    },
    Transport {
        message: String,
    },
}

pub type Result<T> = std::result::Result<T, ThetaError>;

impl ThetaError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn transport(message: impl Into<String>) -> Self {
        Self::Transport {
            message: message.into(),
        }
    }

    /// `{"kind":"invalid-argument","field":...,"reason":...}` and so on.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"kind":"transport","message":"unprintable error"}"#.into())
    }
}

impl std::fmt::Display for ThetaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidArgument { field, reason } => {
                write!(f, "invalid argument `{field}`: {reason}")
            }
            Self::MissingCredential { variable, hint } => {
                write!(f, "missing credential {variable}: {hint}")
            }
            Self::Denied { reason } => write!(f, "denied by the host: {reason}"),
            Self::DryRun { preview } => {
                write!(f, "dry-run: would send {} {}", preview.method, preview.url)
            }
            Self::Upstream {
                status, message, ..
            } => write!(f, "Theta EdgeCloud answered HTTP {status}: {message}"),
            Self::CapacityExhausted {
                service,
                attempts,
                message,
            } => {
                write!(
                    f,
                    "no capacity for `{service}` after {attempts} attempts: {message}"
                )
            }
            Self::Timeout { message } => write!(f, "timeout: {message}"),
            Self::Transport { message } => write!(f, "transport: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_is_tagged_by_kind() {
        let e = ThetaError::invalid("wait", "expected 0–60");
        assert_eq!(
            e.to_json(),
            r#"{"kind":"invalid-argument","field":"wait","reason":"expected 0–60"}"#
        );
        let e = ThetaError::CapacityExhausted {
            service: "qwen3".into(),
            attempts: 3,
            message: "No instances".into(),
        };
        assert!(e.to_json().contains(r#""kind":"capacity-exhausted""#));
    }
}

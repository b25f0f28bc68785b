//! Who may use `theta-host serve`, decided before rmcp sees a request: the browser `Origin` (if any)
//! must be allowed, and the bearer token must be a tenant's. The tenants file holds only each token's
//! SHA-256; a token is hashed and compared with every stored hash in constant time.

use crate::tenant::file::Access;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// The tenant a request authenticated as, put in the request's extensions for the MCP handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated(pub String);

/// The hex SHA-256 of a token: the `token_sha256` line of the tenants file.
pub fn token_sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 64 hex digits as the 32 bytes of a SHA-256.
pub fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The shortest token `token hash` accepts: a guessable token would make the hash pointless.
pub const MIN_TOKEN_CHARS: usize = 24;

/// The one line to paste into a tenant's section for `token` (read from stdin by `token hash`).
pub fn hash_line(token: &str) -> anyhow::Result<String> {
    let token = token.trim();
    if token.chars().count() < MIN_TOKEN_CHARS {
        anyhow::bail!(
            "the token is {} characters; use at least {MIN_TOKEN_CHARS} random ones (e.g. `openssl rand -hex 32`)",
            token.chars().count()
        );
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        anyhow::bail!(
            "the token must be printable ASCII without spaces (it travels in an HTTP header)"
        );
    }
    Ok(format!("token_sha256 = \"{}\"", token_sha256_hex(token)))
}

/// Why a request was not authenticated; the audit line says which, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoToken,
    NotBearer,
    UnknownToken,
    Revoked(String),
}

impl Refusal {
    pub fn reason(&self) -> String {
        match self {
            Refusal::NoToken => "no Authorization header".into(),
            Refusal::NotBearer => "the Authorization header is not `Bearer <token>`".into(),
            Refusal::UnknownToken => "the token is no tenant's".into(),
            Refusal::Revoked(tenant) => format!("tenant `{tenant}` is revoked"),
        }
    }

    /// The revoked tenant, for the audit line's `tenant`.
    pub fn tenant(&self) -> &str {
        match self {
            Refusal::Revoked(tenant) => tenant,
            _ => "",
        }
    }
}

struct Entry {
    tenant: String,
    sha256: [u8; 32],
    revoked: bool,
}

/// Every tenant's token hash.
pub struct TokenTable {
    entries: Vec<Entry>,
}

impl TokenTable {
    pub fn new(access: &BTreeMap<String, Access>) -> Self {
        let entries = access
            .iter()
            .filter_map(|(tenant, a)| {
                a.token_sha256.map(|sha256| Entry {
                    tenant: tenant.clone(),
                    sha256,
                    revoked: a.revoked,
                })
            })
            .collect();
        Self { entries }
    }

    /// Tenants that can sign in (a token, not revoked).
    pub fn active_tenants(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| !e.revoked)
            .map(|e| e.tenant.clone())
            .collect()
    }

    /// The tenant of the request's `Authorization: Bearer <token>`.
    pub fn check(&self, authorization: Option<&http::HeaderValue>) -> Result<String, Refusal> {
        let Some(value) = authorization else {
            return Err(Refusal::NoToken);
        };
        let value = value.to_str().map_err(|_| Refusal::NotBearer)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(Refusal::NotBearer)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(Refusal::NotBearer);
        }
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every entry is compared, so the time taken says nothing about which one matched.
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.sha256.ct_eq(&hash)) {
                found = Some(entry);
            }
        }
        match found {
            None => Err(Refusal::UnknownToken),
            Some(e) if e.revoked => Err(Refusal::Revoked(e.tenant.clone())),
            Some(e) => Ok(e.tenant.clone()),
        }
    }
}

/// The token table of a tenants file, re-read when the file changes, so that revoking a tenant
/// (`revoked = true`, or its `token_sha256` removed) takes effect at its next request, without a
/// restart. Grants, caps and limits are read once, at start; only tenants known then can sign in.
pub struct LiveTokens {
    file: Option<std::path::PathBuf>,
    known: Vec<String>,
    state: std::sync::Mutex<(Option<std::time::SystemTime>, std::sync::Arc<TokenTable>)>,
}

impl LiveTokens {
    pub fn new(table: TokenTable, file: Option<std::path::PathBuf>, known: Vec<String>) -> Self {
        let modified = file.as_deref().and_then(modified);
        Self {
            file,
            known,
            state: std::sync::Mutex::new((modified, std::sync::Arc::new(table))),
        }
    }

    /// The table as the file now has it (the last good one if the file does not parse).
    pub fn current(&self) -> std::sync::Arc<TokenTable> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = &self.file else {
            return state.1.clone();
        };
        let now = modified(file);
        if now != state.0 {
            state.0 = now;
            match crate::tenant::file::load(file) {
                Ok(policy) => {
                    let mut access = policy.access;
                    access.retain(|tenant, _| self.known.contains(tenant));
                    state.1 = std::sync::Arc::new(TokenTable::new(&access));
                    tracing::info!("serve: tokens re-read from {}", file.display());
                }
                Err(e) => tracing::warn!(
                    "serve: {} changed but does not load ({e:#}); keeping the tokens read before",
                    file.display()
                ),
            }
        }
        state.1.clone()
    }
}

fn modified(file: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(file).and_then(|m| m.modified()).ok()
}

/// One allowed browser origin: a scheme, a host, and a port (`None`: any).
#[derive(Clone, Debug, PartialEq, Eq)]
struct OriginPattern {
    scheme: String,
    host: String,
    port: Option<u16>,
}

/// Which browser origins may call the server. A request without `Origin` (not from a browser) is not
/// affected; one with an origin outside the list is refused, against DNS-rebinding and cross-site
/// requests from pages the user visits.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    allowed: Vec<OriginPattern>,
}

impl OriginPolicy {
    /// http(s) on localhost, 127.0.0.1 and [::1] with any port, and `extra` (`scheme://host[:port]`,
    /// or `:*` for any port).
    pub fn loopback_and(extra: &[String]) -> anyhow::Result<Self> {
        let mut allowed = Vec::new();
        for scheme in ["http", "https"] {
            for host in ["localhost", "127.0.0.1", "[::1]"] {
                allowed.push(OriginPattern {
                    scheme: scheme.into(),
                    host: host.into(),
                    port: None,
                });
            }
        }
        for raw in extra {
            let pattern = parse_pattern(raw).ok_or_else(|| {
                anyhow::anyhow!(
                    "--allow-origin `{}`: write scheme://host[:port] (port `*` for any), e.g. https://app.example.com",
                    crate::text::for_terminal(raw)
                )
            })?;
            allowed.push(pattern);
        }
        Ok(Self { allowed })
    }

    /// Whether a request with this `Origin` header may go on.
    pub fn allows(&self, origin: &http::HeaderValue) -> bool {
        let Some(origin) = origin.to_str().ok().and_then(parse_origin) else {
            return false;
        };
        self.allowed.iter().any(|p| {
            p.scheme == origin.scheme
                && p.host == origin.host
                && p.port.is_none_or(|port| Some(port) == origin.port)
        })
    }
}

/// `scheme://host[:port]` as sent in `Origin` (the port made explicit); `null` and anything with a
/// path are not origins this server accepts.
fn parse_origin(text: &str) -> Option<OriginPattern> {
    let uri: http::Uri = text.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return None;
    }
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    Some(OriginPattern {
        scheme,
        host: authority.host().to_ascii_lowercase(),
        port: Some(authority.port_u16().unwrap_or(default_port)),
    })
}

fn parse_pattern(text: &str) -> Option<OriginPattern> {
    let text = text.trim().trim_end_matches('/');
    match text.strip_suffix(":*") {
        Some(base) => parse_origin(base).map(|p| OriginPattern { port: None, ..p }),
        None => parse_origin(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn table() -> TokenTable {
        let mut access = BTreeMap::new();
        for (tenant, token, revoked) in [("a", "token-of-a", false), ("b", "token-of-b", true)] {
            access.insert(
                tenant.to_owned(),
                Access {
                    token_sha256: parse_sha256_hex(&token_sha256_hex(token)),
                    revoked,
                },
            );
        }
        access.insert(
            "c".into(),
            Access {
                token_sha256: None,
                revoked: false,
            },
        );
        TokenTable::new(&access)
    }

    #[test]
    fn a_bearer_token_selects_its_tenant() {
        let t = table();
        let h = |v: &str| HeaderValue::from_str(v).unwrap();
        assert_eq!(t.check(Some(&h("Bearer token-of-a"))), Ok("a".into()));
        assert_eq!(t.check(Some(&h("bearer  token-of-a "))), Ok("a".into()));
        assert_eq!(t.check(None), Err(Refusal::NoToken));
        assert_eq!(t.check(Some(&h("Basic abc"))), Err(Refusal::NotBearer));
        assert_eq!(t.check(Some(&h("token-of-a"))), Err(Refusal::NotBearer));
        assert_eq!(
            t.check(Some(&h("Bearer token-of-c"))),
            Err(Refusal::UnknownToken)
        );
        assert_eq!(
            t.check(Some(&h("Bearer token-of-b"))),
            Err(Refusal::Revoked("b".into()))
        );
        assert_eq!(t.active_tenants(), ["a"]);
    }

    #[test]
    fn the_hash_line_is_sha256_hex_and_short_tokens_are_refused() {
        assert_eq!(
            token_sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let line = hash_line("0123456789abcdef0123456789abcdef\n").unwrap();
        assert_eq!(
            line,
            format!(
                "token_sha256 = \"{}\"",
                token_sha256_hex("0123456789abcdef0123456789abcdef")
            )
        );
        assert!(hash_line("short").is_err());
        assert!(hash_line("has a space in the middle of it, long").is_err());
        assert!(parse_sha256_hex("zz").is_none());
        assert!(parse_sha256_hex(&"g".repeat(64)).is_none());
    }

    #[test]
    fn origins_default_to_loopback_and_extras_are_exact() {
        let p = OriginPolicy::loopback_and(&[
            "https://app.example.com".into(),
            "http://dev.example.com:*".into(),
        ])
        .unwrap();
        let ok = |o: &str| p.allows(&HeaderValue::from_str(o).unwrap());
        assert!(ok("http://localhost:5173"));
        assert!(ok("https://127.0.0.1"));
        assert!(ok("http://[::1]:8080"));
        assert!(ok("https://app.example.com"));
        assert!(ok("https://app.example.com:443"));
        assert!(!ok("https://app.example.com:8443"));
        assert!(!ok("http://app.example.com"));
        assert!(ok("http://dev.example.com:3000"));
        assert!(!ok("https://evil.example"));
        assert!(!ok("http://localhost.evil.example"));
        assert!(!ok("null"));
        assert!(!ok("file://"));
        assert!(OriginPolicy::loopback_and(&["app.example.com".into()]).is_err());
    }
}

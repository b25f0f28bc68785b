//! The tenant policy file (TOML). See `docs/tenants.example.toml` for a commented example.
//! Unknown keys are errors, and every error names the file, the line and the key.

use super::pricing::{PriceTable, usd_to_micros};
use super::{Grants, TenantPolicy};
use crate::limits::CallLimits;
use crate::policy::{Allowlist, Effect};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSchema {
    /// The spend store: a SQLite path (relative to this file) or `postgres://...`.
    #[serde(default)]
    store: Option<String>,
    /// The JSONL ledger of earlier versions: refused with a pointer to `store`.
    #[serde(default)]
    ledger: Option<PathBuf>,
    #[serde(default)]
    pricing: PricingSchema,
    #[serde(default)]
    tenants: BTreeMap<String, TenantSchema>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PricingSchema {
    /// USD charged against the cap for a paid request of a service without a price.
    default_usd: Option<f64>,
    /// USD per request, by service alias (or `chat/completions`).
    #[serde(default)]
    services: BTreeMap<String, f64>,
    /// USD per hour of one replica of a deployment whose VM type has no price below.
    deployment_hourly_usd: Option<f64>,
    /// USD per hour of one replica, by VM type.
    #[serde(default)]
    vm_hourly: BTreeMap<String, f64>,
    /// USD charged for one video encode.
    video_encode_usd: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantSchema {
    /// Command names, `*` for all, or a prefix wildcard such as `theta.video.*`.
    #[serde(default = "all")]
    commands: Vec<String>,
    /// read, mutate, spend.
    #[serde(default = "read_only")]
    effects: Vec<String>,
    /// A subset of the Theta hosts (`*.thetaedgecloud.com` style patterns allowed).
    allowed_hosts: Option<Vec<String>>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    spend_cap_usd: f64,
    requests_per_minute: Option<u32>,
    max_requests_per_call: Option<u32>,
    max_response_bytes: Option<u64>,
    max_request_bytes: Option<u64>,
    wall_clock_seconds: Option<u64>,
    memory_mib: Option<u64>,
    cpu_ms: Option<u64>,
    max_concurrent_calls: Option<u32>,
    /// Hours a deployment created through the host may live before the janitor deletes it; its
    /// hours are charged against the cap when it is created.
    max_deployment_hours: Option<u32>,
    /// `theta-host serve`: the SHA-256 (hex) of the tenant's bearer token (`theta-host token hash`).
    token_sha256: Option<String>,
    /// `theta-host serve`: refuse the tenant's token (the tenant keeps its spend history).
    #[serde(default)]
    revoked: bool,
}

fn all() -> Vec<String> {
    vec!["*".into()]
}

fn read_only() -> Vec<String> {
    vec!["read".into()]
}

/// A parsed policy file.
#[derive(Debug)]
pub struct PolicyFile {
    /// The spend store's location (a path resolved against the file by [`load`], or a URL).
    pub store: Option<String>,
    pub prices: PriceTable,
    pub tenants: BTreeMap<String, TenantPolicy>,
    /// How each tenant authenticates to `theta-host serve` (tenants without a token cannot).
    pub access: BTreeMap<String, Access>,
}

/// A tenant's bearer-token credential for `theta-host serve`: only the token's hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub token_sha256: Option<[u8; 32]>,
    pub revoked: bool,
}

/// Reads and validates a policy file.
pub fn load(path: &Path) -> anyhow::Result<PolicyFile> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!("cannot read the tenant policy file {}: {e}", path.display())
    })?;
    let mut file = parse(&text, &path.display().to_string())?;
    file.store = file.store.map(|s| super::store::resolve_in_file(&s, path));
    Ok(file)
}

/// Parses policy text; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> anyhow::Result<PolicyFile> {
    let schema: FileSchema = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| {
                text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            })
            .unwrap_or(0);
        anyhow::anyhow!("{origin}:{line}: {}", e.message())
    })?;
    // Semantic errors point at the key's line too.
    let at = |key: &str, within: &str| -> String {
        let line = find_line(text, within, key);
        format!("{origin}:{line}: `{key}`")
    };
    if schema.ledger.is_some() {
        anyhow::bail!(
            "{origin}:{}: `ledger` (the JSONL spend ledger) was replaced by the spend store: write `store = \"theta-spend.db\"` (SQLite) or `store = \"postgres://...\"`",
            find_line(text, "", "ledger")
        );
    }
    let mut prices = PriceTable::default();
    let usd = |v: f64, key: &str, section: &str| -> anyhow::Result<u64> {
        usd_to_micros(v)
            .ok_or_else(|| anyhow::anyhow!("{} must be a non-negative number", at(key, section)))
    };
    if let Some(v) = schema.pricing.deployment_hourly_usd {
        prices.set_deployment_hourly_default(usd(v, "deployment_hourly_usd", "[pricing]")?);
    }
    if let Some(v) = schema.pricing.video_encode_usd {
        prices.set_video_encode(usd(v, "video_encode_usd", "[pricing]")?);
    }
    for (vm, v) in &schema.pricing.vm_hourly {
        prices.set_vm_hourly(vm, usd(*v, vm, "[pricing.vm_hourly]")?);
    }
    if let Some(d) = schema.pricing.default_usd {
        prices.set_default(usd_to_micros(d).ok_or_else(|| {
            anyhow::anyhow!(
                "{} must be a non-negative number",
                at("default_usd", "[pricing]")
            )
        })?);
    }
    for (service, usd) in &schema.pricing.services {
        let micros = usd_to_micros(*usd).ok_or_else(|| {
            anyhow::anyhow!(
                "{} must be a non-negative number",
                at(service, "[pricing.services]")
            )
        })?;
        prices.set(service, micros);
    }
    let mut tenants = BTreeMap::new();
    let mut access = BTreeMap::new();
    for (name, t) in schema.tenants {
        let section = format!("[tenants.{name}]");
        let token_sha256 = match &t.token_sha256 {
            Some(hex) => Some(crate::mcp::auth::parse_sha256_hex(hex).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} must be 64 hex digits (the output of `theta-host token hash`), not the token itself",
                    at("token_sha256", &section)
                )
            })?),
            None => None,
        };
        if let Some(hash) = token_sha256
            && let Some((other, _)) = access
                .iter()
                .find(|(_, a): &(&String, &Access)| a.token_sha256 == Some(hash))
        {
            anyhow::bail!(
                "{} is the same as tenant `{other}`'s: every tenant needs its own token",
                at("token_sha256", &section)
            );
        }
        access.insert(
            name.clone(),
            Access {
                token_sha256,
                revoked: t.revoked,
            },
        );
        let mut effects = Vec::new();
        for e in &t.effects {
            effects.push(match e.as_str() {
                "read" => Effect::Read,
                "mutate" => Effect::Mutate,
                "spend" => Effect::Spend,
                other => anyhow::bail!(
                    "{} has `{other}`: use read, mutate or spend",
                    at("effects", &section)
                ),
            });
        }
        let allowlist = match &t.allowed_hosts {
            Some(hosts) => Allowlist::new(hosts, Vec::new())
                .map_err(|why| anyhow::anyhow!("{}: {why}", at("allowed_hosts", &section)))?,
            None => Allowlist::theta_default(),
        };
        let cap = usd_to_micros(t.spend_cap_usd).ok_or_else(|| {
            anyhow::anyhow!(
                "{} must be a non-negative number",
                at("spend_cap_usd", &section)
            )
        })?;
        if effects.contains(&Effect::Spend) && cap == 0 {
            anyhow::bail!(
                "{} is 0 but the tenant may spend: set a cap in USD, or drop `spend` from effects",
                at("spend_cap_usd", &section)
            );
        }
        let positive = |v: Option<u64>, key: &str| -> anyhow::Result<Option<u64>> {
            match v {
                Some(0) => anyhow::bail!("{} must be greater than 0", at(key, &section)),
                other => Ok(other),
            }
        };
        let mut limits = CallLimits::default();
        if let Some(v) = positive(
            t.max_requests_per_call.map(u64::from),
            "max_requests_per_call",
        )? {
            limits.max_requests = v as u32;
        }
        if let Some(v) = positive(t.max_response_bytes, "max_response_bytes")? {
            limits.max_response_bytes = v;
        }
        if let Some(v) = positive(t.max_request_bytes, "max_request_bytes")? {
            limits.max_request_bytes = v;
        }
        if let Some(v) = positive(t.wall_clock_seconds, "wall_clock_seconds")? {
            limits.wall_clock = Duration::from_secs(v);
        }
        if let Some(v) = positive(t.memory_mib, "memory_mib")? {
            limits.memory_bytes = (v as usize).saturating_mul(1 << 20);
        }
        if let Some(v) = positive(t.cpu_ms, "cpu_ms")? {
            limits.cpu = Duration::from_millis(v);
        }
        positive(t.requests_per_minute.map(u64::from), "requests_per_minute")?;
        positive(
            t.max_concurrent_calls.map(u64::from),
            "max_concurrent_calls",
        )?;
        positive(
            t.max_deployment_hours.map(u64::from),
            "max_deployment_hours",
        )?;
        tenants.insert(
            name.clone(),
            TenantPolicy {
                name,
                grants: Grants {
                    commands: t.commands,
                    effects,
                },
                allowlist,
                dry_run: t.dry_run,
                spend_cap_micros: cap,
                requests_per_minute: t.requests_per_minute,
                max_concurrent_calls: t.max_concurrent_calls.unwrap_or(8),
                max_deployment_hours: t.max_deployment_hours.unwrap_or(1),
                shared_limits: true,
                limits,
            },
        );
    }
    if tenants.is_empty() {
        anyhow::bail!("{origin}: no [tenants.NAME] section: define at least one tenant");
    }
    Ok(PolicyFile {
        store: schema.store,
        prices,
        tenants,
        access,
    })
}

/// Line of `key` after the line that starts `section` (1-based), or of the section itself.
fn find_line(text: &str, section: &str, key: &str) -> usize {
    let mut in_section = section.is_empty();
    let mut section_line = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == section;
            if in_section {
                section_line = i + 1;
            }
            continue;
        }
        if in_section {
            let k = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            if k == key {
                return i + 1;
            }
        }
    }
    section_line
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
store = "spend.db"
[pricing]
default_usd = 0.5
[pricing.services]
flux = 0.02

[tenants.alice]
commands = ["*"]
effects = ["read", "mutate", "spend"]
spend_cap_usd = 2.0
cpu_ms = 500

[tenants.bob]
commands = ["list_services", "get_request_status"]
allowed_hosts = ["ondemand.thetaedgecloud.com"]
"#;

    #[test]
    fn parses_tenants_prices_and_limits() {
        let f = parse(GOOD, "t.toml").unwrap();
        let alice = &f.tenants["alice"];
        assert_eq!(alice.spend_cap_micros, 2_000_000);
        assert_eq!(alice.limits.cpu, Duration::from_millis(500));
        assert!(alice.grants.allows_effect(Effect::Spend));
        let bob = &f.tenants["bob"];
        assert!(!bob.grants.allows_effect(Effect::Mutate));
        assert!(bob.grants.allows_command("list_services"));
        assert!(!bob.grants.allows_command("infer"));
        assert!(!bob.allowlist.allows_host("controller.thetaedgecloud.com"));
        let segs = |s: &str| vec!["infer_request".to_owned(), s.to_owned()];
        use crate::policy::Price;
        assert_eq!(
            f.prices.estimate(Price::Service, &segs("flux"), None),
            20_000
        );
        assert_eq!(
            f.prices.estimate(Price::Service, &segs("zzz"), None),
            500_000
        );
        assert_eq!(f.store.as_deref(), Some("spend.db"));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            (
                "[tenants.a]\ncommands = [\"*\"]\nspend_cap = 3\n",
                "t.toml:3",
                "spend_cap",
            ),
            (
                "[tenants.a]\neffects = [\"read\", \"steal\"]\n",
                "t.toml:2",
                "effects",
            ),
            (
                "[tenants.a]\nallowed_hosts = [\"evil.example\"]\n",
                "t.toml:2",
                "allowed_hosts",
            ),
            (
                "[tenants.a]\neffects = [\"spend\"]\n",
                "t.toml:1",
                "spend_cap_usd",
            ),
            ("[tenants.a]\ncpu_ms = 0\n", "t.toml:2", "cpu_ms"),
            (
                "[tenants.a]\ncpu_ms = \"fast\"\n",
                "t.toml:2",
                "invalid type",
            ),
            (
                "[pricing.services]\nflux = -1\n[tenants.a]\n",
                "t.toml:2",
                "flux",
            ),
            ("", "t.toml", "no [tenants"),
            ("ledger = \"x.jsonl\"\n[tenants.a]\n", "t.toml:1", "store"),
            (
                "[tenants.a]\nmax_deployment_hours = 0\n",
                "t.toml:2",
                "max_deployment_hours",
            ),
        ];
        for (text, at, key) in cases {
            let err = parse(text, "t.toml").unwrap_err().to_string();
            assert!(err.contains(at) && err.contains(key), "{text:?} → {err}");
        }
    }
}

#[cfg(test)]
mod tokens {
    use super::parse;

    #[test]
    fn token_hashes_are_read_checked_and_unique() {
        let hash = crate::mcp::auth::token_sha256_hex("a-long-random-token-for-tenant-a");
        let text = format!(
            "[tenants.a]\ntoken_sha256 = \"{hash}\"\n[tenants.b]\nrevoked = true\ntoken_sha256 = \"{}\"\n[tenants.c]\n",
            crate::mcp::auth::token_sha256_hex("another-random-token-for-tenant-b").to_uppercase()
        );
        let f = parse(&text, "t.toml").unwrap();
        assert_eq!(
            f.access["a"].token_sha256,
            crate::mcp::auth::parse_sha256_hex(&hash)
        );
        assert!(!f.access["a"].revoked);
        assert!(f.access["b"].revoked);
        assert_eq!(f.access["c"].token_sha256, None);

        // The token itself instead of its hash: refused, naming the line and key.
        let err = parse("[tenants.a]\ntoken_sha256 = \"my-token\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.toml:2") && err.contains("token_sha256"),
            "{err}"
        );
        assert!(err.contains("token hash"), "{err}");
        // Two tenants with one token: which tenant a request is would be ambiguous.
        let dup = format!(
            "[tenants.a]\ntoken_sha256 = \"{hash}\"\n[tenants.b]\ntoken_sha256 = \"{hash}\"\n"
        );
        let err = parse(&dup, "t.toml").unwrap_err().to_string();
        assert!(
            err.contains("t.toml:4") && err.contains("tenant `a`"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn the_documented_example_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/tenants.example.toml");
        let f = super::load(std::path::Path::new(path)).unwrap();
        assert_eq!(f.tenants.len(), 3);
        assert!(f.tenants["sandbox-trial"].dry_run);
    }
}

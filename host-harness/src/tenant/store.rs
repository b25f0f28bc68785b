//! Where the host keeps money: the shared spend store (`theta-spend-store`: SQLite on one machine,
//! PostgreSQL for a fleet). Every process and every host that names the same store enforces one cap
//! per tenant; there is no in-memory mode.
//!
//! The location comes from the tenants file (`store = ...`), else `THETA_STORE_URL`, else a SQLite
//! file in the user's data directory. The store is opened once per host (eagerly for a tenants file,
//! on first use for the single-user CLI, so `list_services` never waits for it).

use std::path::{Path, PathBuf};
pub use theta_spend_store::{
    CallSlot, Lease, LeaseState, NewLease, Reservation, SpendStore, StoreError, Totals,
};
use tokio::sync::OnceCell;

/// The store of one host process, opened on first use.
pub struct StoreHandle {
    location: String,
    cell: OnceCell<SpendStore>,
    /// Names this process in reservations and leases (`host:pid`), for operators.
    host_id: String,
}

impl StoreHandle {
    pub fn new(location: String) -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        Self {
            location,
            cell: OnceCell::new(),
            host_id: format!("{host}:{}", std::process::id()),
        }
    }

    /// The store, opening (and migrating) it the first time.
    pub async fn get(&self) -> Result<&SpendStore, StoreError> {
        self.cell
            .get_or_try_init(|| SpendStore::open(&self.location))
            .await
    }

    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// The location, with any password removed.
    pub fn describe(&self) -> String {
        theta_spend_store::redact_url(&self.location)
    }
}

/// The default store: `THETA_STORE_URL`'s value if given, else `spend.db` in the user's data
/// directory (`$XDG_DATA_HOME/theta-host`, `~/.local/share/theta-host`).
pub fn default_location(from_env: Option<&str>) -> anyhow::Result<String> {
    if let Some(url) = from_env.filter(|v| !v.trim().is_empty()) {
        return Ok(url.trim().to_owned());
    }
    let dir = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("theta-host"))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no place for the spend store: set THETA_STORE_URL (a SQLite path or postgres://...) or HOME"
            )
        })?;
    Ok(dir.join("spend.db").display().to_string())
}

/// A `store = ...` value of a tenants file: URLs as they are, relative paths relative to the file.
pub fn resolve_in_file(value: &str, file: &Path) -> String {
    let v = value.trim();
    if v.starts_with("postgres://") || v.starts_with("postgresql://") {
        return v.to_owned();
    }
    let path = v.strip_prefix("sqlite:").unwrap_or(v);
    let p = Path::new(path);
    if p.is_absolute() {
        return path.to_owned();
    }
    file.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(p))
        .unwrap_or_else(|| p.to_owned())
        .display()
        .to_string()
}

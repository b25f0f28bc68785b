//! The spend ledger: every paid request is reserved (and written to disk, fsynced) *before* it is sent,
//! and settled or released after. Replaying the file after a crash or restart counts every reservation
//! that was never released as spent, so a crash can neither lose a record nor let a tenant pass its cap.
//! Check-and-reserve happens under one lock, so two concurrent calls cannot both take the last dollar.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Entry {
    /// Money set aside before sending; counts as spent until released.
    Reserve,
    /// The request ran: the reservation stays spent (amount may be corrected).
    Settle,
    /// The request was not accepted upstream (409, 429, 4xx): the reservation is given back.
    Release,
}

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    ts_unix_ms: u128,
    tenant: String,
    id: u64,
    entry: Entry,
    micros: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    what: String,
}

/// A reservation handed to the caller; settle or release it exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub tenant: String,
    pub id: u64,
    pub micros: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LedgerError {
    #[error(
        "spend cap reached for tenant `{tenant}`: ${spent:.4} spent of ${cap:.4}; this request is estimated at ${estimate:.4}"
    )]
    CapReached {
        tenant: String,
        spent: f64,
        cap: f64,
        estimate: f64,
    },
    #[error("the spend ledger could not be written ({0}); refusing paid requests")]
    Io(String),
}

struct State {
    file: Option<File>,
    spent: HashMap<String, u64>,
    open: HashMap<u64, (String, u64)>,
    next_id: u64,
}

pub struct SpendLedger {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

impl SpendLedger {
    /// A ledger that lives only in memory (tests, or hosts without spend caps).
    pub fn in_memory() -> Self {
        Self {
            path: None,
            state: Mutex::new(State {
                file: None,
                spent: HashMap::new(),
                open: HashMap::new(),
                next_id: 1,
            }),
        }
    }

    /// Opens (or creates) the ledger file and replays it. A malformed line is an error naming the line:
    /// a ledger that cannot be read must not be silently reset to zero.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut spent: HashMap<String, u64> = HashMap::new();
        let mut reserved: HashMap<u64, (String, u64)> = HashMap::new();
        let mut next_id = 1;
        if path.exists() {
            let reader = BufReader::new(File::open(path)?);
            for (n, line) in reader.lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let rec: Line = match serde_json::from_str(&line) {
                    Ok(rec) => rec,
                    // A torn last line (crash mid-write) is ignored: its reservation was never
                    // acknowledged, so no request was sent for it.
                    Err(_) if is_last_line(path, n)? => break,
                    Err(e) => anyhow::bail!(
                        "spend ledger {} line {} is not a ledger record: {e}",
                        path.display(),
                        n + 1
                    ),
                };
                next_id = next_id.max(rec.id + 1);
                match rec.entry {
                    Entry::Reserve => {
                        *spent.entry(rec.tenant.clone()).or_default() += rec.micros;
                        reserved.insert(rec.id, (rec.tenant, rec.micros));
                    }
                    Entry::Settle => {
                        if let Some((tenant, reserved_micros)) = reserved.remove(&rec.id) {
                            let s = spent.entry(tenant).or_default();
                            *s = s.saturating_sub(reserved_micros) + rec.micros;
                        }
                    }
                    Entry::Release => {
                        if let Some((tenant, micros)) = reserved.remove(&rec.id) {
                            let s = spent.entry(tenant).or_default();
                            *s = s.saturating_sub(micros);
                        }
                    }
                }
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            path: Some(path.to_owned()),
            state: Mutex::new(State {
                file: Some(file),
                spent,
                // Reservations left open by a crash stay counted as spent; nothing will settle them.
                open: HashMap::new(),
                next_id,
            }),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Micro-dollars counted as spent by `tenant` (open reservations included).
    pub fn spent(&self, tenant: &str) -> u64 {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.spent.get(tenant).copied().unwrap_or(0)
    }

    /// Reserves `micros` for `tenant` if that keeps it within `cap`; the record is on disk before this
    /// returns.
    pub fn reserve(
        &self,
        tenant: &str,
        micros: u64,
        cap: u64,
        what: &str,
    ) -> Result<Reservation, LedgerError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let spent = st.spent.get(tenant).copied().unwrap_or(0);
        if spent.saturating_add(micros) > cap {
            return Err(LedgerError::CapReached {
                tenant: tenant.to_owned(),
                spent: super::pricing::micros_to_usd(spent),
                cap: super::pricing::micros_to_usd(cap),
                estimate: super::pricing::micros_to_usd(micros),
            });
        }
        let id = st.next_id;
        st.next_id += 1;
        append(&mut st, tenant, id, Entry::Reserve, micros, what)?;
        *st.spent.entry(tenant.to_owned()).or_default() += micros;
        st.open.insert(id, (tenant.to_owned(), micros));
        Ok(Reservation {
            tenant: tenant.to_owned(),
            id,
            micros,
        })
    }

    /// The request ran: keep it as spent.
    pub fn settle(&self, r: &Reservation) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.open.remove(&r.id).is_some()
            && let Err(e) = append(&mut st, &r.tenant, r.id, Entry::Settle, r.micros, "")
        {
            // The reservation is already on disk and counted: failing to settle loses no money.
            tracing::error!("{e}");
        }
    }

    /// The request was not accepted: give the reservation back.
    pub fn release(&self, r: &Reservation) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.open.remove(&r.id).is_none() {
            return;
        }
        // Only un-count it once the release is durable; otherwise it stays (safely) spent.
        match append(&mut st, &r.tenant, r.id, Entry::Release, r.micros, "") {
            Ok(()) => {
                let s = st.spent.entry(r.tenant.clone()).or_default();
                *s = s.saturating_sub(r.micros);
            }
            Err(e) => tracing::error!("{e}"),
        }
    }
}

fn append(
    st: &mut State,
    tenant: &str,
    id: u64,
    entry: Entry,
    micros: u64,
    what: &str,
) -> Result<(), LedgerError> {
    let Some(file) = st.file.as_mut() else {
        return Ok(());
    };
    let line = Line {
        ts_unix_ms: crate::audit::now_ms(),
        tenant: tenant.to_owned(),
        id,
        entry,
        micros,
        what: what.chars().take(200).collect(),
    };
    let mut text = serde_json::to_string(&line).map_err(|e| LedgerError::Io(e.to_string()))?;
    text.push('\n');
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_data())
        .map_err(|e| LedgerError::Io(e.to_string()))
}

fn is_last_line(path: &Path, index: usize) -> std::io::Result<bool> {
    let count = BufReader::new(File::open(path)?).lines().count();
    Ok(index + 1 == count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("theta-ledger-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("ledger.jsonl")
    }

    #[test]
    fn cap_is_enforced_and_releases_give_money_back() {
        let l = SpendLedger::in_memory();
        let a = l.reserve("t", 600_000, 1_000_000, "flux").unwrap();
        let err = l.reserve("t", 600_000, 1_000_000, "flux").unwrap_err();
        assert!(matches!(err, LedgerError::CapReached { .. }), "{err}");
        l.release(&a);
        let b = l.reserve("t", 600_000, 1_000_000, "flux").unwrap();
        l.settle(&b);
        assert_eq!(l.spent("t"), 600_000);
        assert_eq!(l.spent("other"), 0);
    }

    #[test]
    fn a_restart_counts_unreleased_reservations_and_ignores_a_torn_tail() {
        let path = tmp("restart");
        {
            let l = SpendLedger::open(&path).unwrap();
            let a = l.reserve("t", 100, 1_000, "a").unwrap();
            l.settle(&a);
            let b = l.reserve("t", 200, 1_000, "b").unwrap();
            l.release(&b);
            // Crash: reserved, never settled.
            l.reserve("t", 300, 1_000, "c").unwrap();
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"ts_unix_ms\":1,\"tena")
            .unwrap();
        let l = SpendLedger::open(&path).unwrap();
        assert_eq!(l.spent("t"), 400);
        let next = l.reserve("t", 600, 1_000, "d").unwrap();
        assert!(next.id > 3);
        assert!(l.reserve("t", 1, 1_000, "e").is_err());
    }

    #[test]
    fn a_corrupt_middle_line_is_an_error_naming_the_line() {
        let path = tmp("corrupt");
        std::fs::write(&path, "not json\n{\"ts_unix_ms\":1,\"tenant\":\"t\",\"id\":1,\"entry\":\"reserve\",\"micros\":5}\n").unwrap();
        let err = SpendLedger::open(&path)
            .err()
            .expect("corrupt ledger refused");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn concurrent_reservations_never_pass_the_cap() {
        let l = std::sync::Arc::new(SpendLedger::in_memory());
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || l.reserve("t", 100_000, 1_000_000, "x").is_ok())
            })
            .collect();
        let ok = handles
            .into_iter()
            .filter(|_| true)
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(ok, 10);
        assert_eq!(l.spent("t"), 1_000_000);
    }
}

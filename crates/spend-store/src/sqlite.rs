//! SQLite backend: one file shared by every process on a machine.

use crate::{
    CallSlot, Lease, LeaseState, Money, NewLease, OpenReservation, Reservation, SCHEMA_VERSION,
    StoreError, Totals, Transition, bad_state_in_db, cap_reached, from_db, plan_transition, to_db,
};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An operation's failure: a database error (named with the location by `run`) or a store error.
enum Op {
    Db(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Op {
    fn from(e: rusqlite::Error) -> Self {
        Op::Db(e)
    }
}

impl From<StoreError> for Op {
    fn from(e: StoreError) -> Self {
        Op::Store(e)
    }
}

type R<T> = Result<T, Op>;

/// tenant, state, charged_micros, shard, suffix
type LeaseMoneyRow = (String, String, i64, Option<String>, Option<String>);

pub(crate) struct Sqlite {
    location: Arc<str>,
    conn: Arc<Mutex<Connection>>,
}

const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "
CREATE TABLE tenants (
    name TEXT PRIMARY KEY,
    settled_micros INTEGER NOT NULL DEFAULT 0,
    reserved_micros INTEGER NOT NULL DEFAULT 0,
    open_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE reservations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL REFERENCES tenants(name),
    micros INTEGER NOT NULL,
    actual_micros INTEGER,
    state TEXT NOT NULL CHECK (state IN ('open', 'settled', 'released')),
    what TEXT NOT NULL,
    host_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    closed_ms INTEGER
);
CREATE INDEX reservations_open ON reservations(tenant) WHERE state = 'open';
CREATE TABLE rate_windows (
    tenant TEXT NOT NULL,
    window_start_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (tenant, window_start_ms)
);
CREATE TABLE call_slots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    holder TEXT NOT NULL,
    acquired_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX call_slots_tenant ON call_slots(tenant, expires_ms);
CREATE INDEX call_slots_holder ON call_slots(holder, expires_ms);
CREATE TABLE leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL REFERENCES tenants(name),
    project TEXT NOT NULL,
    vm_type TEXT NOT NULL,
    hourly_micros INTEGER NOT NULL,
    disposable INTEGER NOT NULL,
    owner TEXT,
    state TEXT NOT NULL CHECK (state IN ('intent', 'live', 'deleted', 'never-created')),
    shard TEXT,
    suffix TEXT,
    host_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    deleted_ms INTEGER,
    charged_hours INTEGER NOT NULL DEFAULT 0,
    charged_micros INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX leases_open ON leases(state) WHERE state IN ('intent', 'live');
CREATE TABLE lease_hours (
    lease_id INTEGER NOT NULL REFERENCES leases(id),
    hour_index INTEGER NOT NULL,
    micros INTEGER NOT NULL,
    charged_ms INTEGER NOT NULL,
    PRIMARY KEY (lease_id, hour_index)
);
",
)];

const LEASE_COLS: &str = "id, tenant, project, vm_type, hourly_micros, disposable, owner, state, shard, suffix, \
     host_id, created_ms, expires_ms, deleted_ms, charged_hours, charged_micros";

impl Sqlite {
    pub(crate) async fn open(path: PathBuf) -> Result<Self, StoreError> {
        let location: Arc<str> = format!("sqlite {}", path.display()).into();
        let loc = location.clone();
        let conn = tokio::task::spawn_blocking(move || open_blocking(&path, &loc))
            .await
            .map_err(|e| StoreError::Io {
                location: location.to_string(),
                message: format!("open task failed: {e}"),
            })??;
        Ok(Self {
            location,
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub(crate) fn describe(&self) -> &str {
        &self.location
    }

    /// Runs `f` on the connection on a blocking thread.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let location = self.location.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
        .await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(Op::Store(e))) => Err(e),
            Ok(Err(Op::Db(e))) => Err(db_err(&location, e)),
            Err(e) => Err(StoreError::Io {
                location: location.to_string(),
                message: format!("database task failed: {e}"),
            }),
        }
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction (committed when `f` succeeds).
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &str) -> R<T> + Send + 'static,
    {
        let location = self.location.clone();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let v = f(&tx, &location)?;
            tx.commit()?;
            Ok(v)
        })
        .await
    }

    pub(crate) async fn reserve(
        &self,
        tenant: &str,
        micros: u64,
        cap: u64,
        what: &str,
        host_id: &str,
    ) -> Result<Reservation, StoreError> {
        let (tenant, what, host_id) = (tenant.to_owned(), what.to_owned(), host_id.to_owned());
        let now = crate::now_ms();
        self.write(move |tx, _| {
            let counted = lock_tenant(tx, &tenant)?.counted_micros() as u128;
            if let Some(e) = cap_reached(&tenant, counted, micros, cap) {
                return Err(e.into());
            }
            let m = to_db(micros, "reservation amount")?;
            let id: i64 = tx.query_row(
                "INSERT INTO reservations (tenant, micros, state, what, host_id, created_ms)
                 VALUES (?1, ?2, 'open', ?3, ?4, ?5) RETURNING id",
                params![tenant, m, what, host_id, now],
                |r| r.get(0),
            )?;
            tx.execute(
                "UPDATE tenants SET reserved_micros = reserved_micros + ?2, open_count = open_count + 1
                 WHERE name = ?1",
                params![tenant, m],
            )?;
            Ok(Reservation { id, tenant, micros })
        })
        .await
    }

    /// `settle`: `Some(actual)` settles, `None` releases. `Ok(true)` if this call closed it.
    pub(crate) async fn close(
        &self,
        id: i64,
        settle: Option<Option<u64>>,
    ) -> Result<bool, StoreError> {
        let now = crate::now_ms();
        self.write(move |tx, loc| {
            let row: Option<(String, i64, String)> = tx
                .query_row(
                    "SELECT tenant, micros, state FROM reservations WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((tenant, micros, state)) = row else {
                return Err(StoreError::NotFound {
                    location: loc.to_owned(),
                    what: format!("reservation {id}"),
                }
                .into());
            };
            if state != "open" {
                return Ok(false);
            }
            match settle {
                Some(actual) => {
                    let amount = match actual {
                        Some(a) => to_db(a, "actual cost")?,
                        None => micros,
                    };
                    tx.execute(
                        "UPDATE reservations SET state = 'settled', actual_micros = ?2, closed_ms = ?3
                         WHERE id = ?1",
                        params![id, amount, now],
                    )?;
                    tx.execute(
                        "UPDATE tenants SET reserved_micros = reserved_micros - ?2,
                         settled_micros = settled_micros + ?3, open_count = open_count - 1 WHERE name = ?1",
                        params![tenant, micros, amount],
                    )?;
                }
                None => {
                    tx.execute(
                        "UPDATE reservations SET state = 'released', closed_ms = ?2 WHERE id = ?1",
                        params![id, now],
                    )?;
                    tx.execute(
                        "UPDATE tenants SET reserved_micros = reserved_micros - ?2,
                         open_count = open_count - 1 WHERE name = ?1",
                        params![tenant, micros],
                    )?;
                }
            }
            Ok(true)
        })
        .await
    }

    pub(crate) async fn totals(&self, tenant: &str) -> Result<Totals, StoreError> {
        let tenant = tenant.to_owned();
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT settled_micros, reserved_micros, open_count FROM tenants WHERE name = ?1",
                [tenant],
                totals_row,
            )
            .optional()?
            .unwrap_or_default())
        })
        .await
    }

    pub(crate) async fn all_totals(&self) -> Result<Vec<(String, Totals)>, StoreError> {
        self.run(|c| {
            let mut st = c.prepare(
                "SELECT name, settled_micros, reserved_micros, open_count FROM tenants ORDER BY name",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    Totals {
                        settled_micros: from_db(r.get(1)?),
                        reserved_micros: from_db(r.get(2)?),
                        open_count: from_db(r.get(3)?),
                    },
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(crate) async fn open_reservations(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<OpenReservation>, StoreError> {
        let tenant = tenant.map(str::to_owned);
        self.run(move |c| {
            let mut st = c.prepare(
                "SELECT id, tenant, micros, what, host_id, created_ms FROM reservations
                 WHERE state = 'open' AND (?1 IS NULL OR tenant = ?1) ORDER BY id",
            )?;
            let rows = st.query_map([tenant], |r| {
                Ok(OpenReservation {
                    id: r.get(0)?,
                    tenant: r.get(1)?,
                    micros: from_db(r.get(2)?),
                    what: r.get(3)?,
                    host_id: r.get(4)?,
                    created_at_unix_ms: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(crate) async fn recount(
        &self,
    ) -> Result<(Vec<(String, Totals)>, Vec<(String, Totals)>), StoreError> {
        let stored = self.all_totals().await?;
        let recomputed = self
            .run(|c| {
                let tx = c.transaction()?;
                let mut st = tx.prepare(RECOUNT_SQL)?;
                let rows = st.query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        Totals {
                            settled_micros: from_db(r.get(1)?),
                            reserved_micros: from_db(r.get(2)?),
                            open_count: from_db(r.get(3)?),
                        },
                    ))
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        Ok((stored, recomputed))
    }

    pub(crate) async fn take_request(
        &self,
        tenant: &str,
        window: i64,
        per_minute: i64,
    ) -> Result<bool, StoreError> {
        let tenant = tenant.to_owned();
        self.write(move |tx, _| {
            let n: Option<i64> = tx
                .query_row(
                    "INSERT INTO rate_windows (tenant, window_start_ms, n) VALUES (?1, ?2, 1)
                     ON CONFLICT (tenant, window_start_ms) DO UPDATE SET n = rate_windows.n + 1
                     WHERE rate_windows.n < ?3
                     RETURNING n",
                    params![tenant, window, per_minute],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "DELETE FROM rate_windows WHERE tenant = ?1 AND window_start_ms < ?2",
                params![tenant, window],
            )?;
            Ok(n.is_some())
        })
        .await
    }

    pub(crate) async fn acquire_call_slot(
        &self,
        tenant: &str,
        max: i64,
        holder: &str,
        now: i64,
        expires: i64,
    ) -> Result<Option<CallSlot>, StoreError> {
        let (tenant, holder) = (tenant.to_owned(), holder.to_owned());
        self.write(move |tx, _| {
            tx.execute(
                "DELETE FROM call_slots WHERE tenant = ?1 AND expires_ms <= ?2",
                params![tenant, now],
            )?;
            let held: i64 = tx.query_row(
                "SELECT COUNT(*) FROM call_slots WHERE tenant = ?1",
                [&tenant],
                |r| r.get(0),
            )?;
            if held >= max {
                return Ok(None);
            }
            let id: i64 = tx.query_row(
                "INSERT INTO call_slots (tenant, holder, acquired_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)
                 RETURNING id",
                params![tenant, holder, now, expires],
                |r| r.get(0),
            )?;
            Ok(Some(CallSlot {
                id,
                tenant,
                holder,
                expires_at_unix_ms: expires,
            }))
        })
        .await
    }

    pub(crate) async fn heartbeat_call_slot(
        &self,
        id: i64,
        expires: i64,
    ) -> Result<bool, StoreError> {
        self.write(move |tx, _| {
            Ok(tx.execute(
                "UPDATE call_slots SET expires_ms = ?2 WHERE id = ?1 AND expires_ms > ?3",
                params![id, expires, crate::now_ms()],
            )? > 0)
        })
        .await
    }

    pub(crate) async fn release_call_slot(&self, id: i64) -> Result<(), StoreError> {
        self.write(move |tx, _| {
            tx.execute("DELETE FROM call_slots WHERE id = ?1", [id])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn lease_intent(
        &self,
        lease: &NewLease,
        prepaid: u64,
        cap: u64,
        now: i64,
    ) -> Result<i64, StoreError> {
        let lease = lease.clone();
        self.write(move |tx, _| {
            let counted = lock_tenant(tx, &lease.tenant)?.counted_micros() as u128;
            if let Some(e) = cap_reached(&lease.tenant, counted, prepaid, cap) {
                return Err(e.into());
            }
            let hourly = to_db(lease.hourly_micros, "hourly price")?;
            let prepaid = to_db(prepaid, "prepaid amount")?;
            let id: i64 = tx.query_row(
                "INSERT INTO leases (tenant, project, vm_type, hourly_micros, disposable, owner, state,
                     host_id, created_ms, expires_ms, charged_hours, charged_micros)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'intent', ?7, ?8, ?9, ?10, ?11) RETURNING id",
                params![
                    lease.tenant,
                    lease.project,
                    lease.vm_type,
                    hourly,
                    lease.disposable,
                    lease.owner,
                    lease.host_id,
                    now,
                    lease.expires_at_unix_ms,
                    lease.prepaid_hours as i64,
                    prepaid
                ],
                |r| r.get(0),
            )?;
            {
                let mut ins = tx.prepare(
                    "INSERT INTO lease_hours (lease_id, hour_index, micros, charged_ms) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for h in 0..lease.prepaid_hours as i64 {
                    ins.execute(params![id, h, hourly, now])?;
                }
            }
            tx.execute(
                "UPDATE tenants SET reserved_micros = reserved_micros + ?2, open_count = open_count + 1
                 WHERE name = ?1",
                params![lease.tenant, prepaid],
            )?;
            Ok(id)
        })
        .await
    }

    pub(crate) async fn lease_transition(
        &self,
        id: i64,
        t: Transition,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(move |tx, loc| {
            let row: Option<LeaseMoneyRow> = tx
                .query_row(
                    "SELECT tenant, state, charged_micros, shard, suffix FROM leases WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let Some((tenant, state, charged, shard, suffix)) = row else {
                return Err(lease_not_found(loc, id).into());
            };
            let state = LeaseState::parse(&state).ok_or_else(|| bad_state_in_db(loc, &state))?;
            let (next, money) =
                plan_transition(loc, id, state, (shard.as_deref(), suffix.as_deref()), &t)?;
            match &t {
                Transition::Created { shard, suffix } if state == LeaseState::Intent => {
                    tx.execute(
                        "UPDATE leases SET state = ?2, shard = ?3, suffix = ?4 WHERE id = ?1",
                        params![id, next.as_str(), shard, suffix],
                    )?;
                }
                Transition::Deleted if state != LeaseState::Deleted => {
                    tx.execute(
                        "UPDATE leases SET state = ?2, deleted_ms = ?3 WHERE id = ?1",
                        params![id, next.as_str(), now],
                    )?;
                }
                Transition::Failed if state != next => {
                    tx.execute(
                        "UPDATE leases SET state = ?2 WHERE id = ?1",
                        params![id, next.as_str()],
                    )?;
                }
                _ => {}
            }
            match money {
                Money::None => {}
                Money::Settle => {
                    tx.execute(
                        "UPDATE tenants SET reserved_micros = reserved_micros - ?2,
                         settled_micros = settled_micros + ?2, open_count = open_count - 1 WHERE name = ?1",
                        params![tenant, charged],
                    )?;
                }
                Money::GiveBack => {
                    tx.execute(
                        "UPDATE tenants SET reserved_micros = reserved_micros - ?2,
                         open_count = open_count - 1 WHERE name = ?1",
                        params![tenant, charged],
                    )?;
                }
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn leases(
        &self,
        tenant: Option<&str>,
        only_open: bool,
    ) -> Result<Vec<Lease>, StoreError> {
        let tenant = tenant.map(str::to_owned);
        self.run(move |c| {
            let sql = format!(
                "SELECT {LEASE_COLS} FROM leases WHERE (?1 IS NULL OR tenant = ?1)
                 AND (?2 = 0 OR state IN ('intent', 'live')) ORDER BY id"
            );
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(params![tenant, only_open], lease_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(crate) async fn expired_leases(&self, now: i64) -> Result<Vec<Lease>, StoreError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {LEASE_COLS} FROM leases l WHERE state IN ('intent', 'live') AND (
                    (expires_ms IS NOT NULL AND expires_ms <= ?1)
                    OR (disposable AND owner IS NOT NULL AND NOT EXISTS (
                        SELECT 1 FROM call_slots c WHERE c.holder = l.owner AND c.expires_ms > ?1)))
                 ORDER BY id"
            );
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map([now], lease_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(crate) async fn charge_lease_hour(
        &self,
        lease_id: i64,
        hour: i64,
        cap: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(move |tx, loc| {
            let row: Option<(String, String, i64)> = tx
                .query_row(
                    "SELECT tenant, state, hourly_micros FROM leases WHERE id = ?1",
                    [lease_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((tenant, state, hourly)) = row else {
                return Err(lease_not_found(loc, lease_id).into());
            };
            let state = LeaseState::parse(&state).ok_or_else(|| bad_state_in_db(loc, &state))?;
            if !matches!(state, LeaseState::Intent | LeaseState::Live) {
                return Err(hour_on_closed_lease(loc, lease_id, state).into());
            }
            let exists = tx
                .query_row(
                    "SELECT 1 FROM lease_hours WHERE lease_id = ?1 AND hour_index = ?2",
                    [lease_id, hour],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if exists {
                return Ok(());
            }
            let counted = lock_tenant(tx, &tenant)?.counted_micros() as u128;
            if let Some(e) = cap_reached(&tenant, counted, from_db(hourly), cap) {
                return Err(e.into());
            }
            tx.execute(
                "INSERT INTO lease_hours (lease_id, hour_index, micros, charged_ms) VALUES (?1, ?2, ?3, ?4)",
                params![lease_id, hour, hourly, now],
            )?;
            tx.execute(
                "UPDATE leases SET charged_hours = charged_hours + 1, charged_micros = charged_micros + ?2
                 WHERE id = ?1",
                params![lease_id, hourly],
            )?;
            let column = if state == LeaseState::Live {
                "settled_micros"
            } else {
                "reserved_micros"
            };
            tx.execute(
                &format!("UPDATE tenants SET {column} = {column} + ?2 WHERE name = ?1"),
                params![tenant, hourly],
            )?;
            Ok(())
        })
        .await
    }
}

pub(crate) fn lease_not_found(location: &str, id: i64) -> StoreError {
    StoreError::NotFound {
        location: location.to_owned(),
        what: format!("lease {id}"),
    }
}

pub(crate) fn hour_on_closed_lease(location: &str, id: i64, state: LeaseState) -> StoreError {
    StoreError::InvalidState {
        location: location.to_owned(),
        what: format!("lease {id}"),
        state: state.as_str().to_owned(),
        hint: "only leases in `intent` or `live` accrue hours".into(),
    }
}

/// Recomputes every tenant's counters from the rows (same shape as the tenants table).
pub(crate) const RECOUNT_SQL: &str = "
SELECT t.name,
    COALESCE((SELECT SUM(COALESCE(actual_micros, micros)) FROM reservations r WHERE r.tenant = t.name AND r.state = 'settled'), 0)
  + COALESCE((SELECT SUM(charged_micros) FROM leases l WHERE l.tenant = t.name AND l.state IN ('live', 'deleted')), 0),
    COALESCE((SELECT SUM(micros) FROM reservations r WHERE r.tenant = t.name AND r.state = 'open'), 0)
  + COALESCE((SELECT SUM(charged_micros) FROM leases l WHERE l.tenant = t.name AND l.state = 'intent'), 0),
    (SELECT COUNT(*) FROM reservations r WHERE r.tenant = t.name AND r.state = 'open')
  + (SELECT COUNT(*) FROM leases l WHERE l.tenant = t.name AND l.state = 'intent')
FROM tenants t ORDER BY t.name";

/// Ensures the tenant row exists and returns its counters (the IMMEDIATE transaction already holds
/// the write lock).
fn lock_tenant(tx: &Transaction<'_>, tenant: &str) -> R<Totals> {
    tx.execute("INSERT OR IGNORE INTO tenants (name) VALUES (?1)", [tenant])?;
    Ok(tx.query_row(
        "SELECT settled_micros, reserved_micros, open_count FROM tenants WHERE name = ?1",
        [tenant],
        totals_row,
    )?)
}

fn totals_row(r: &Row<'_>) -> rusqlite::Result<Totals> {
    Ok(Totals {
        settled_micros: from_db(r.get(0)?),
        reserved_micros: from_db(r.get(1)?),
        open_count: from_db(r.get(2)?),
    })
}

fn lease_row(r: &Row<'_>) -> rusqlite::Result<Lease> {
    let state: String = r.get(7)?;
    Ok(Lease {
        id: r.get(0)?,
        tenant: r.get(1)?,
        project: r.get(2)?,
        vm_type: r.get(3)?,
        hourly_micros: from_db(r.get(4)?),
        disposable: r.get(5)?,
        owner: r.get(6)?,
        state: LeaseState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                7,
                rusqlite::types::Type::Text,
                format!("unknown lease state `{state}`").into(),
            )
        })?,
        shard: r.get(8)?,
        suffix: r.get(9)?,
        host_id: r.get(10)?,
        created_at_unix_ms: r.get(11)?,
        expires_at_unix_ms: r.get(12)?,
        deleted_at_unix_ms: r.get(13)?,
        charged_hours: r.get::<_, i64>(14)?.clamp(0, u32::MAX as i64) as u32,
        charged_micros: from_db(r.get(15)?),
    })
}

fn db_err(location: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Database {
        location: location.to_owned(),
        message: e.to_string(),
    }
}

fn open_blocking(path: &std::path::Path, location: &str) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
            location: location.to_owned(),
            message: format!("cannot create directory {}: {e}", dir.display()),
        })?;
    }
    let dberr = |e| db_err(location, e);
    let mut conn = Connection::open(path).map_err(dberr)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(dberr)?;
    // Switching to WAL needs a moment of exclusive access; another process opening the same new file
    // at once can make it report busy even with a busy handler, so retry for up to BUSY_TIMEOUT.
    let started = std::time::Instant::now();
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => break,
            Ok(mode) => {
                return Err(StoreError::Database {
                    location: location.to_owned(),
                    message: format!("cannot enable WAL (journal_mode is `{mode}`)"),
                });
            }
            Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(dberr(e)),
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(dberr)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(dberr)?;
    migrate(&mut conn, location)?;
    Ok(conn)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn migrate(conn: &mut Connection, location: &str) -> Result<(), StoreError> {
    let dberr = |e| db_err(location, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(dberr)?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)",
        [],
    )
    .map_err(dberr)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(dberr)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            location: location.to_owned(),
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql).map_err(dberr)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_ms) VALUES (?1, ?2)",
            params![version, crate::now_ms()],
        )
        .map_err(dberr)?;
    }
    tx.commit().map_err(dberr)
}

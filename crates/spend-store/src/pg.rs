//! PostgreSQL backend: one database shared by a fleet of hosts.
//!
//! Every write is a READ COMMITTED transaction that locks the tenant's row first (`FOR UPDATE`), so
//! concurrent cap checks of one tenant are serialized by the database; each statement after the lock
//! sees everything the previous lock holder committed. Lock order is always tenant row, then lease
//! row. Serialization failures and deadlocks are retried with backoff.

use crate::sqlite::{hour_on_closed_lease, lease_not_found};
use crate::{
    CallSlot, Lease, LeaseState, Money, NewLease, OpenReservation, Reservation, SCHEMA_VERSION,
    StoreError, Totals, Transition, bad_state_in_db, cap_reached, from_db, plan_transition, to_db,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::time::Duration;
use tokio_postgres::config::Host;
use tokio_postgres::{NoTls, Row};

/// Advisory lock key serializing migrations across hosts ("theta" spend store).
const MIGRATION_LOCK: i64 = 0x7468_6574_6173_7031;
const POOL_SIZE: usize = 8;
const MAX_RETRIES: u32 = 10;

enum Op {
    Db(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Op {
    fn from(e: tokio_postgres::Error) -> Self {
        Op::Db(e)
    }
}

impl From<StoreError> for Op {
    fn from(e: StoreError) -> Self {
        Op::Store(e)
    }
}

impl From<deadpool_postgres::PoolError> for Op {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Op::Pool(e)
    }
}

pub(crate) struct Pg {
    location: String,
    pool: Pool,
}

const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "
CREATE TABLE tenants (
    name TEXT PRIMARY KEY,
    settled_micros BIGINT NOT NULL DEFAULT 0,
    reserved_micros BIGINT NOT NULL DEFAULT 0,
    open_count BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE reservations (
    id BIGSERIAL PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(name),
    micros BIGINT NOT NULL,
    actual_micros BIGINT,
    state TEXT NOT NULL CHECK (state IN ('open', 'settled', 'released')),
    what TEXT NOT NULL,
    host_id TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    closed_ms BIGINT
);
CREATE INDEX reservations_open ON reservations(tenant) WHERE state = 'open';
CREATE TABLE rate_windows (
    tenant TEXT NOT NULL,
    window_start_ms BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (tenant, window_start_ms)
);
CREATE TABLE call_slots (
    id BIGSERIAL PRIMARY KEY,
    tenant TEXT NOT NULL,
    holder TEXT NOT NULL,
    acquired_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX call_slots_tenant ON call_slots(tenant, expires_ms);
CREATE INDEX call_slots_holder ON call_slots(holder, expires_ms);
CREATE TABLE leases (
    id BIGSERIAL PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(name),
    project TEXT NOT NULL,
    vm_type TEXT NOT NULL,
    hourly_micros BIGINT NOT NULL,
    disposable BOOLEAN NOT NULL,
    owner TEXT,
    state TEXT NOT NULL CHECK (state IN ('intent', 'live', 'deleted', 'never-created')),
    shard TEXT,
    suffix TEXT,
    host_id TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT,
    deleted_ms BIGINT,
    charged_hours BIGINT NOT NULL DEFAULT 0,
    charged_micros BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX leases_open ON leases(state) WHERE state IN ('intent', 'live');
CREATE TABLE lease_hours (
    lease_id BIGINT NOT NULL REFERENCES leases(id),
    hour_index BIGINT NOT NULL,
    micros BIGINT NOT NULL,
    charged_ms BIGINT NOT NULL,
    PRIMARY KEY (lease_id, hour_index)
);
",
)];

const LEASE_COLS: &str = "id, tenant, project, vm_type, hourly_micros, disposable, owner, state, shard, suffix, \
     host_id, created_ms, expires_ms, deleted_ms, charged_hours, charged_micros";

/// Runs `$body` (which may use `?` and `return Err(..)`) in a transaction bound to `$tx`, committing on
/// success and retrying the whole transaction on serialization failure or deadlock.
macro_rules! transact {
    ($self:ident, |$tx:ident, $loc:ident| $body:block) => {{
        let mut attempt: u32 = 0;
        loop {
            let r: Result<_, Op> = async {
                let mut client = $self.pool.get().await?;
                let $tx = client.transaction().await?;
                #[allow(unused_variables)]
                let $loc: &str = &$self.location;
                let v = $body;
                $tx.commit().await?;
                Ok(v)
            }
            .await;
            match r {
                Err(Op::Db(e)) if retryable(&e) && attempt < MAX_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => break other.map_err(|e| $self.err(e)),
            }
        }
    }};
}

/// Runs `$body` with a pooled client bound to `$c` (reads).
macro_rules! read {
    ($self:ident, |$c:ident| $body:block) => {{
        let r: Result<_, Op> = async {
            let $c = $self.pool.get().await?;
            Ok($body)
        }
        .await;
        r.map_err(|e| $self.err(e))
    }};
}

fn retryable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

fn backoff(attempt: u32) -> Duration {
    // 5, 10, 20 … ms plus jitter from the clock, capped at 500 ms.
    let base = 5u64 << attempt.min(7);
    let jitter = (crate::now_ms() as u64 ^ (std::process::id() as u64)) % 7;
    Duration::from_millis(base.min(500) + jitter)
}

fn describe_config(cfg: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(s) => s.clone(),
                Host::Unix(p) => p.display().to_string(),
            };
            match cfg.get_ports().get(i).or(cfg.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let user = cfg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = cfg.get_dbname().or(cfg.get_user()).unwrap_or("postgres");
    format!("postgres {user}{}/{db}", hosts.join(","))
}

impl Pg {
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
        let mut cfg: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| StoreError::BadLocation {
                location: crate::redact_url(url),
                hint: format!(
                    "not a PostgreSQL connection URL ({e}); expected postgres://user:password@host:port/dbname"
                ),
            })?;
        if cfg.get_hosts().is_empty() {
            cfg.host("localhost");
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(10));
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("theta-host");
        }
        let location = describe_config(&cfg);
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Database {
                location: location.clone(),
                message: format!("cannot build the connection pool: {e}"),
            })?;
        let pg = Pg { location, pool };
        pg.migrate().await?;
        Ok(pg)
    }

    pub(crate) fn describe(&self) -> &str {
        &self.location
    }

    fn err(&self, e: Op) -> StoreError {
        match e {
            Op::Store(e) => e,
            Op::Db(e) => StoreError::Database {
                location: self.location.clone(),
                message: pg_message(&e),
            },
            Op::Pool(e) => StoreError::Database {
                location: self.location.clone(),
                message: match e {
                    deadpool_postgres::PoolError::Backend(e) => pg_message(&e),
                    other => other.to_string(),
                },
            },
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        transact!(self, |tx, loc| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL, applied_ms BIGINT NOT NULL)",
            )
            .await?;
            let current: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version",
                    &[],
                )
                .await?
                .get(0);
            if current > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    location: loc.to_owned(),
                    found: current,
                    known: SCHEMA_VERSION,
                }
                .into());
            }
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO schema_version (version, applied_ms) VALUES ($1, $2)",
                    &[version, &crate::now_ms()],
                )
                .await?;
            }
        })
    }

    pub(crate) async fn reserve(
        &self,
        tenant: &str,
        micros: u64,
        cap: u64,
        what: &str,
        host_id: &str,
    ) -> Result<Reservation, StoreError> {
        let m = to_db(micros, "reservation amount")?;
        let now = crate::now_ms();
        transact!(self, |tx, _loc| {
            let counted = lock_tenant(&tx, tenant).await?.counted_micros() as u128;
            if let Some(e) = cap_reached(tenant, counted, micros, cap) {
                return Err(e.into());
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO reservations (tenant, micros, state, what, host_id, created_ms)
                     VALUES ($1, $2, 'open', $3, $4, $5) RETURNING id",
                    &[&tenant, &m, &what, &host_id, &now],
                )
                .await?
                .get(0);
            tx.execute(
                "UPDATE tenants SET reserved_micros = reserved_micros + $2, open_count = open_count + 1
                 WHERE name = $1",
                &[&tenant, &m],
            )
            .await?;
            Reservation {
                id,
                tenant: tenant.to_owned(),
                micros,
            }
        })
    }

    pub(crate) async fn close(
        &self,
        id: i64,
        settle: Option<Option<u64>>,
    ) -> Result<bool, StoreError> {
        let actual = match settle {
            Some(Some(a)) => Some(to_db(a, "actual cost")?),
            _ => None,
        };
        let now = crate::now_ms();
        transact!(self, |tx, loc| {
            let Some(row) = tx
                .query_opt("SELECT tenant FROM reservations WHERE id = $1", &[&id])
                .await?
            else {
                return Err(StoreError::NotFound {
                    location: loc.to_owned(),
                    what: format!("reservation {id}"),
                }
                .into());
            };
            let tenant: String = row.get(0);
            lock_tenant(&tx, &tenant).await?;
            let row = tx
                .query_one(
                    "SELECT micros, state FROM reservations WHERE id = $1 FOR UPDATE",
                    &[&id],
                )
                .await?;
            let (micros, state): (i64, String) = (row.get(0), row.get(1));
            if state != "open" {
                false
            } else {
                if settle.is_some() {
                    let amount = actual.unwrap_or(micros);
                    tx.execute(
                        "UPDATE reservations SET state = 'settled', actual_micros = $2, closed_ms = $3
                         WHERE id = $1",
                        &[&id, &amount, &now],
                    )
                    .await?;
                    tx.execute(
                        "UPDATE tenants SET reserved_micros = reserved_micros - $2,
                         settled_micros = settled_micros + $3, open_count = open_count - 1 WHERE name = $1",
                        &[&tenant, &micros, &amount],
                    )
                    .await?;
                } else {
                    tx.execute(
                        "UPDATE reservations SET state = 'released', closed_ms = $2 WHERE id = $1",
                        &[&id, &now],
                    )
                    .await?;
                    tx.execute(
                        "UPDATE tenants SET reserved_micros = reserved_micros - $2,
                         open_count = open_count - 1 WHERE name = $1",
                        &[&tenant, &micros],
                    )
                    .await?;
                }
                true
            }
        })
    }

    pub(crate) async fn totals(&self, tenant: &str) -> Result<Totals, StoreError> {
        read!(self, |c| {
            c.query_opt(
                "SELECT settled_micros, reserved_micros, open_count FROM tenants WHERE name = $1",
                &[&tenant],
            )
            .await?
            .map(|r| totals_row(&r, 0))
            .unwrap_or_default()
        })
    }

    pub(crate) async fn all_totals(&self) -> Result<Vec<(String, Totals)>, StoreError> {
        read!(self, |c| {
            c.query(
                "SELECT name, settled_micros, reserved_micros, open_count FROM tenants ORDER BY name",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), totals_row(r, 1)))
            .collect()
        })
    }

    pub(crate) async fn open_reservations(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<OpenReservation>, StoreError> {
        read!(self, |c| {
            c.query(
                "SELECT id, tenant, micros, what, host_id, created_ms FROM reservations
                 WHERE state = 'open' AND ($1::TEXT IS NULL OR tenant = $1) ORDER BY id",
                &[&tenant],
            )
            .await?
            .iter()
            .map(|r| OpenReservation {
                id: r.get(0),
                tenant: r.get(1),
                micros: from_db(r.get(2)),
                what: r.get(3),
                host_id: r.get(4),
                created_at_unix_ms: r.get(5),
            })
            .collect()
        })
    }

    pub(crate) async fn recount(
        &self,
    ) -> Result<(Vec<(String, Totals)>, Vec<(String, Totals)>), StoreError> {
        // One REPEATABLE READ snapshot for both sides.
        read!(self, |c| {
            let mut c = c;
            let tx = c
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let stored = tx
                .query(
                    "SELECT name, settled_micros, reserved_micros, open_count FROM tenants ORDER BY name",
                    &[],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), totals_row(r, 1)))
                .collect();
            let recomputed = tx
                .query(RECOUNT_SQL, &[])
                .await?
                .iter()
                .map(|r| (r.get(0), totals_row(r, 1)))
                .collect();
            tx.commit().await?;
            (stored, recomputed)
        })
    }

    pub(crate) async fn take_request(
        &self,
        tenant: &str,
        window: i64,
        per_minute: i64,
    ) -> Result<bool, StoreError> {
        transact!(self, |tx, _loc| {
            let taken = tx
                .query_opt(
                    "INSERT INTO rate_windows AS w (tenant, window_start_ms, n) VALUES ($1, $2, 1)
                     ON CONFLICT (tenant, window_start_ms) DO UPDATE SET n = w.n + 1 WHERE w.n < $3
                     RETURNING n",
                    &[&tenant, &window, &per_minute],
                )
                .await?
                .is_some();
            tx.execute(
                "DELETE FROM rate_windows WHERE tenant = $1 AND window_start_ms < $2",
                &[&tenant, &window],
            )
            .await?;
            taken
        })
    }

    pub(crate) async fn acquire_call_slot(
        &self,
        tenant: &str,
        max: i64,
        holder: &str,
        now: i64,
        expires: i64,
    ) -> Result<Option<CallSlot>, StoreError> {
        transact!(self, |tx, _loc| {
            lock_tenant(&tx, tenant).await?;
            tx.execute(
                "DELETE FROM call_slots WHERE tenant = $1 AND expires_ms <= $2",
                &[&tenant, &now],
            )
            .await?;
            let held: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM call_slots WHERE tenant = $1",
                    &[&tenant],
                )
                .await?
                .get(0);
            if held >= max {
                None
            } else {
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO call_slots (tenant, holder, acquired_ms, expires_ms)
                         VALUES ($1, $2, $3, $4) RETURNING id",
                        &[&tenant, &holder, &now, &expires],
                    )
                    .await?
                    .get(0);
                Some(CallSlot {
                    id,
                    tenant: tenant.to_owned(),
                    holder: holder.to_owned(),
                    expires_at_unix_ms: expires,
                })
            }
        })
    }

    pub(crate) async fn heartbeat_call_slot(
        &self,
        id: i64,
        expires: i64,
    ) -> Result<bool, StoreError> {
        let now = crate::now_ms();
        read!(self, |c| {
            c.execute(
                "UPDATE call_slots SET expires_ms = $2 WHERE id = $1 AND expires_ms > $3",
                &[&id, &expires, &now],
            )
            .await?
                > 0
        })
    }

    pub(crate) async fn release_call_slot(&self, id: i64) -> Result<(), StoreError> {
        read!(self, |c| {
            c.execute("DELETE FROM call_slots WHERE id = $1", &[&id])
                .await?;
        })
    }

    pub(crate) async fn lease_intent(
        &self,
        lease: &NewLease,
        prepaid: u64,
        cap: u64,
        now: i64,
    ) -> Result<i64, StoreError> {
        let hourly = to_db(lease.hourly_micros, "hourly price")?;
        let prepaid_db = to_db(prepaid, "prepaid amount")?;
        let hours = lease.prepaid_hours as i64;
        transact!(self, |tx, _loc| {
            let counted = lock_tenant(&tx, &lease.tenant).await?.counted_micros() as u128;
            if let Some(e) = cap_reached(&lease.tenant, counted, prepaid, cap) {
                return Err(e.into());
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO leases (tenant, project, vm_type, hourly_micros, disposable, owner, state,
                         host_id, created_ms, expires_ms, charged_hours, charged_micros)
                     VALUES ($1, $2, $3, $4, $5, $6, 'intent', $7, $8, $9, $10, $11) RETURNING id",
                    &[
                        &lease.tenant,
                        &lease.project,
                        &lease.vm_type,
                        &hourly,
                        &lease.disposable,
                        &lease.owner,
                        &lease.host_id,
                        &now,
                        &lease.expires_at_unix_ms,
                        &hours,
                        &prepaid_db,
                    ],
                )
                .await?
                .get(0);
            tx.execute(
                "INSERT INTO lease_hours (lease_id, hour_index, micros, charged_ms)
                 SELECT $1, h, $2, $3 FROM generate_series(0::BIGINT, $4::BIGINT - 1) AS h",
                &[&id, &hourly, &now, &hours],
            )
            .await?;
            tx.execute(
                "UPDATE tenants SET reserved_micros = reserved_micros + $2, open_count = open_count + 1
                 WHERE name = $1",
                &[&lease.tenant, &prepaid_db],
            )
            .await?;
            id
        })
    }

    pub(crate) async fn lease_transition(
        &self,
        id: i64,
        t: Transition,
        now: i64,
    ) -> Result<(), StoreError> {
        transact!(self, |tx, loc| {
            let Some(row) = tx
                .query_opt("SELECT tenant FROM leases WHERE id = $1", &[&id])
                .await?
            else {
                return Err(lease_not_found(loc, id).into());
            };
            let tenant: String = row.get(0);
            lock_tenant(&tx, &tenant).await?;
            let row = tx
                .query_one(
                    "SELECT state, charged_micros, shard, suffix FROM leases WHERE id = $1 FOR UPDATE",
                    &[&id],
                )
                .await?;
            let (state, charged): (String, i64) = (row.get(0), row.get(1));
            let (shard, suffix): (Option<String>, Option<String>) = (row.get(2), row.get(3));
            let state = LeaseState::parse(&state).ok_or_else(|| bad_state_in_db(loc, &state))?;
            let (next, money) =
                plan_transition(loc, id, state, (shard.as_deref(), suffix.as_deref()), &t)?;
            match &t {
                Transition::Created { shard, suffix } if state == LeaseState::Intent => {
                    tx.execute(
                        "UPDATE leases SET state = $2, shard = $3, suffix = $4 WHERE id = $1",
                        &[&id, &next.as_str(), shard, suffix],
                    )
                    .await?;
                }
                Transition::Deleted if state != LeaseState::Deleted => {
                    tx.execute(
                        "UPDATE leases SET state = $2, deleted_ms = $3 WHERE id = $1",
                        &[&id, &next.as_str(), &now],
                    )
                    .await?;
                }
                Transition::Failed if state != next => {
                    tx.execute(
                        "UPDATE leases SET state = $2 WHERE id = $1",
                        &[&id, &next.as_str()],
                    )
                    .await?;
                }
                _ => {}
            }
            match money {
                Money::None => {}
                Money::Settle => {
                    tx.execute(
                        "UPDATE tenants SET reserved_micros = reserved_micros - $2,
                         settled_micros = settled_micros + $2, open_count = open_count - 1 WHERE name = $1",
                        &[&tenant, &charged],
                    )
                    .await?;
                }
                Money::GiveBack => {
                    tx.execute(
                        "UPDATE tenants SET reserved_micros = reserved_micros - $2,
                         open_count = open_count - 1 WHERE name = $1",
                        &[&tenant, &charged],
                    )
                    .await?;
                }
            }
        })
    }

    pub(crate) async fn leases(
        &self,
        tenant: Option<&str>,
        only_open: bool,
    ) -> Result<Vec<Lease>, StoreError> {
        let sql = format!(
            "SELECT {LEASE_COLS} FROM leases WHERE ($1::TEXT IS NULL OR tenant = $1)
             AND (NOT $2 OR state IN ('intent', 'live')) ORDER BY id"
        );
        let rows = read!(self, |c| { c.query(&sql, &[&tenant, &only_open]).await? })?;
        rows.iter().map(|r| self.lease_row(r)).collect()
    }

    pub(crate) async fn expired_leases(&self, now: i64) -> Result<Vec<Lease>, StoreError> {
        let sql = format!(
            "SELECT {LEASE_COLS} FROM leases l WHERE state IN ('intent', 'live') AND (
                (expires_ms IS NOT NULL AND expires_ms <= $1)
                OR (disposable AND owner IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM call_slots c WHERE c.holder = l.owner AND c.expires_ms > $1)))
             ORDER BY id"
        );
        let rows = read!(self, |c| { c.query(&sql, &[&now]).await? })?;
        rows.iter().map(|r| self.lease_row(r)).collect()
    }

    pub(crate) async fn charge_lease_hour(
        &self,
        lease_id: i64,
        hour: i64,
        cap: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        transact!(self, |tx, loc| {
            let Some(row) = tx
                .query_opt("SELECT tenant FROM leases WHERE id = $1", &[&lease_id])
                .await?
            else {
                return Err(lease_not_found(loc, lease_id).into());
            };
            let tenant: String = row.get(0);
            let counted = lock_tenant(&tx, &tenant).await?.counted_micros() as u128;
            let row = tx
                .query_one(
                    "SELECT state, hourly_micros FROM leases WHERE id = $1 FOR UPDATE",
                    &[&lease_id],
                )
                .await?;
            let (state, hourly): (String, i64) = (row.get(0), row.get(1));
            let state = LeaseState::parse(&state).ok_or_else(|| bad_state_in_db(loc, &state))?;
            if !matches!(state, LeaseState::Intent | LeaseState::Live) {
                return Err(hour_on_closed_lease(loc, lease_id, state).into());
            }
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM lease_hours WHERE lease_id = $1 AND hour_index = $2",
                    &[&lease_id, &hour],
                )
                .await?
                .is_some();
            if !exists {
                if let Some(e) = cap_reached(&tenant, counted, from_db(hourly), cap) {
                    return Err(e.into());
                }
                tx.execute(
                    "INSERT INTO lease_hours (lease_id, hour_index, micros, charged_ms) VALUES ($1, $2, $3, $4)",
                    &[&lease_id, &hour, &hourly, &now],
                )
                .await?;
                tx.execute(
                    "UPDATE leases SET charged_hours = charged_hours + 1, charged_micros = charged_micros + $2
                     WHERE id = $1",
                    &[&lease_id, &hourly],
                )
                .await?;
                let column = if state == LeaseState::Live {
                    "settled_micros"
                } else {
                    "reserved_micros"
                };
                tx.execute(
                    &format!("UPDATE tenants SET {column} = {column} + $2 WHERE name = $1"),
                    &[&tenant, &hourly],
                )
                .await?;
            }
        })
    }

    fn lease_row(&self, r: &Row) -> Result<Lease, StoreError> {
        let state: String = r.get(7);
        Ok(Lease {
            id: r.get(0),
            tenant: r.get(1),
            project: r.get(2),
            vm_type: r.get(3),
            hourly_micros: from_db(r.get(4)),
            disposable: r.get(5),
            owner: r.get(6),
            state: LeaseState::parse(&state)
                .ok_or_else(|| bad_state_in_db(&self.location, &state))?,
            shard: r.get(8),
            suffix: r.get(9),
            host_id: r.get(10),
            created_at_unix_ms: r.get(11),
            expires_at_unix_ms: r.get(12),
            deleted_at_unix_ms: r.get(13),
            charged_hours: r.get::<_, i64>(14).clamp(0, u32::MAX as i64) as u32,
            charged_micros: from_db(r.get(15)),
        })
    }
}

const RECOUNT_SQL: &str = "
SELECT t.name,
    (COALESCE((SELECT SUM(COALESCE(actual_micros, micros)) FROM reservations r WHERE r.tenant = t.name AND r.state = 'settled'), 0)
  + COALESCE((SELECT SUM(charged_micros) FROM leases l WHERE l.tenant = t.name AND l.state IN ('live', 'deleted')), 0))::BIGINT,
    (COALESCE((SELECT SUM(micros) FROM reservations r WHERE r.tenant = t.name AND r.state = 'open'), 0)
  + COALESCE((SELECT SUM(charged_micros) FROM leases l WHERE l.tenant = t.name AND l.state = 'intent'), 0))::BIGINT,
    ((SELECT COUNT(*) FROM reservations r WHERE r.tenant = t.name AND r.state = 'open')
  + (SELECT COUNT(*) FROM leases l WHERE l.tenant = t.name AND l.state = 'intent'))::BIGINT
FROM tenants t ORDER BY t.name";

/// Ensures the tenant row exists, locks it for the rest of the transaction and returns its counters.
async fn lock_tenant(tx: &deadpool_postgres::Transaction<'_>, tenant: &str) -> Result<Totals, Op> {
    tx.execute(
        "INSERT INTO tenants (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
        &[&tenant],
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT settled_micros, reserved_micros, open_count FROM tenants WHERE name = $1 FOR UPDATE",
            &[&tenant],
        )
        .await?;
    Ok(totals_row(&row, 0))
}

fn totals_row(r: &Row, first: usize) -> Totals {
    Totals {
        settled_micros: from_db(r.get(first)),
        reserved_micros: from_db(r.get(first + 1)),
        open_count: from_db(r.get(first + 2)),
    }
}

/// The server's message (with SQLSTATE) rather than tokio-postgres' generic "db error".
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

//! Money you can trust across processes and hosts (issue 11), with real `theta-host` processes against
//! the fake EdgeCloud and a real spend store (a SQLite file; PostgreSQL when `THETA_TEST_PG_URL` is
//! set, e.g. `eval "$(scripts/pg-test-cluster.sh start)"`):
//! * N `theta-host call` processes at once on one store, capped for K paid requests: exactly K reach
//!   the fake (SQLite, and PostgreSQL);
//! * `kill -9` in the middle of a paid call (and at random moments of a call): the store opens, the
//!   reservation stays counted once, `theta-host spend --release ID` gives it back;
//! * `validateDisposable` killed before its create answers, while polling, during the probe: the
//!   next `theta-host janitor` pass leaves the fake's deployment list empty;
//! * deployment leases: the cap is charged `max_deployment_hours` × hourly up front, a create that
//!   does not fit is never sent, `theta-host spend --json` shows the lease, an expired lease is
//!   deleted by the janitor and audited;
//! * the request-rate limit and call slots hold across processes.

use crate::common::{TOKEN, plugin_wasm};
use crate::families::{EC_KEY, fake_all};
use fake_edgecloud::{FakeEdgeCloud, Fault, FaultKind, PROJECT_ID, RouteMatch};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use theta_host::tenant::store::{NewLease, SpendStore};
use tokio::process::{Child, Command};

const TEMPLATE: &str = "img_gf070dbq0kttgz1atmiatyunhdxm";
const CTL: &str = "controller.thetaedgecloud.com";
const FLUX_PATH: &str = "/infer_request/flux";

/// One paid flux request (priced by the tenants file's `[pricing.services] flux`).
fn flux_args() -> String {
    json!({"service": "flux", "input": {"prompt": "a red kite"}, "wait": 5}).to_string()
}

// ---------------------------------------------------------------------------------------------
// processes

/// The `theta-host` binary: `THETA_HOST_BIN`, else cargo's build of this workspace state for this
/// profile (a no-op when it is fresh).
fn bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("THETA_HOST_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target>/<profile>");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build
            .current_dir(&root)
            .args(["build", "-p", "theta-host", "--bin", "theta-host"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        if let Some(target) = profile_dir.parent() {
            build.env("CARGO_TARGET_DIR", target);
        }
        let status = build.status().expect("running cargo build for theta-host");
        assert!(status.success(), "cargo build -p theta-host failed");
        let bin = profile_dir.join(format!("theta-host{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} is missing after the build", bin.display());
        bin
    })
    .clone()
}

/// One compile cache for every process of this test binary, filled once before any test starts
/// processes in parallel (so they load the precompiled plugin instead of compiling it N times).
fn cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("theta-e2e-money-cache-{}", std::process::id()))
}

async fn precompiled() {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let dir = temp_dir("precompile");
        let out = clean_command(&dir)
            .arg("precompile")
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "theta-host precompile: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
    .await;
}

/// `theta-host` with only what the test gives it: no THETA_* from the machine, no .env.local, HOME
/// in the test's directory (so no user store or cache is touched).
fn clean_command(dir: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("THETA_HOST_CACHE_DIR", cache_dir())
        .current_dir(dir)
        .arg("--plugin")
        .arg(plugin_wasm())
        .arg("--env-file")
        .arg(dir.join("no-such.env"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("theta-e2e-money-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A test's hosts: one tenants file (naming the store), one fake, any number of processes.
struct Hosts<'a> {
    dir: PathBuf,
    tenants: PathBuf,
    fake: &'a FakeEdgeCloud,
}

impl<'a> Hosts<'a> {
    /// `store` is the tenants file's `store = ...` (a path relative to it, or a URL); `policy` the rest.
    async fn new(name: &str, fake: &'a FakeEdgeCloud, store: &str, policy: &str) -> Hosts<'a> {
        precompiled().await;
        let dir = temp_dir(name);
        let tenants = dir.join("tenants.toml");
        std::fs::write(&tenants, format!("store = {}\n{policy}", json!(store))).unwrap();
        Hosts { dir, tenants, fake }
    }

    /// The SQLite store file of a test whose store is `spend.db`.
    async fn sqlite(&self) -> SpendStore {
        SpendStore::open(&self.dir.join("spend.db").display().to_string())
            .await
            .expect("the store opens")
    }

    /// `theta-host --tenants FILE --tenant T --test-upstream FAKE [--audit-log A] ...` with the
    /// credentials of the fake in its environment (never on its command line).
    fn command(&self, tenant: &str, audit: Option<&Path>) -> Command {
        let mut cmd = clean_command(&self.dir);
        cmd.env("THETA_ONDEMAND_API_TOKEN", TOKEN)
            .env("THETA_EC_API_KEY", EC_KEY)
            .env("THETA_EC_PROJECT_ID", PROJECT_ID)
            .env("THETA_HTTP_RETRY_BACKOFF_MS", "25")
            .env("THETA_HTTP_TIMEOUT_MS", "5000")
            .arg("--tenants")
            .arg(&self.tenants)
            .args(["--tenant", tenant])
            .args(["--test-upstream", &self.fake.addr().to_string()]);
        if let Some(a) = audit {
            cmd.arg("--audit-log").arg(a);
        }
        cmd
    }

    fn call_command(&self, tenant: &str, audit: Option<&Path>, name: &str, args: &str) -> Command {
        let mut cmd = self.command(tenant, audit);
        cmd.args(["call", name, "--quiet", "--args", args]);
        cmd
    }

    async fn call(&self, tenant: &str, audit: Option<&Path>, name: &str, args: &str) -> Output {
        self.call_command(tenant, audit, name, args)
            .output()
            .await
            .unwrap()
    }

    fn spawn_call(&self, tenant: &str, name: &str, args: &str) -> Child {
        self.call_command(tenant, None, name, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("theta-host call starts")
    }

    /// `theta-host spend --json`, one tenant's row.
    async fn spend(&self, tenant: &str) -> Value {
        let out = self
            .command(tenant, None)
            .args(["spend", "--json"])
            .output()
            .await
            .unwrap();
        let all = ok_json(&out, "theta-host spend --json");
        all["tenants"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["tenant"] == tenant))
            .cloned()
            .unwrap_or_else(|| panic!("no row for `{tenant}` in {all}"))
    }

    /// `theta-host janitor --json` (one pass), with its audit log.
    async fn janitor(&self, audit: &Path) -> Value {
        let out = self
            .command("default", Some(audit))
            .args(["janitor", "--json"])
            .output()
            .await
            .unwrap();
        ok_json(&out, "theta-host janitor --json")
    }
}

fn ok_json(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_json(out, what)
}

fn stdout_json(out: &Output, what: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
        .collect()
}

fn count(fake: &FakeEdgeCloud, method: &str, path: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

/// Waits (up to 30 s) until `cond` holds on the fake while `child` runs; a child that exits first
/// fails the test with what it printed.
async fn until(child: &mut Child, what: &str, mut cond: impl FnMut() -> bool) {
    use tokio::io::AsyncReadExt;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        if let Some(status) = child.try_wait().unwrap() {
            let (mut out, mut err) = (String::new(), String::new());
            if let Some(mut s) = child.stdout.take() {
                let _ = s.read_to_string(&mut out).await;
            }
            if let Some(mut s) = child.stderr.take() {
                let _ = s.read_to_string(&mut err).await;
            }
            panic!("waiting until {what}, the process ended ({status}):\n{out}\n{err}");
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `kill -9` and reap.
async fn kill9(child: &mut Child) {
    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "the process was killed: {status}");
}

fn usd(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A fresh PostgreSQL schema for one test, as a store URL; `None` (and a note) without
/// `THETA_TEST_PG_URL`.
async fn pg_store(name: &str) -> Option<String> {
    let Ok(base) = std::env::var("THETA_TEST_PG_URL") else {
        println!(
            "skipped: THETA_TEST_PG_URL not set (eval \"$(scripts/pg-test-cluster.sh start)\")"
        );
        return None;
    };
    let schema = format!("money_{}_{name}", std::process::id());
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}");
    let out = Command::new(psql())
        .arg(&base)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
        .output()
        .await
        .expect("psql runs (scripts/ci-deps.sh installs postgresql)");
    assert!(
        out.status.success(),
        "creating schema {schema}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

/// psql: on PATH, else Debian's versioned directory.
fn psql() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("psql"))
        .find(|p| p.exists());
    on_path
        .or_else(|| {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path().join("bin/psql")))
                .filter(|p| p.exists())
                .collect();
            dirs.sort();
            dirs.pop()
        })
        .unwrap_or_else(|| PathBuf::from("psql"))
}

// ---------------------------------------------------------------------------------------------
// 1, 2: N processes, one store, a cap for K paid requests

const PAYER: &str = r#"
[pricing.services]
flux = 0.01

[tenants.payer]
commands = ["*"]
effects = ["read", "mutate", "spend"]
spend_cap_usd = 0.025
"#;

/// Six `theta-host call infer` processes at once, capped for two flux requests: exactly two reach
/// the fake, the four others are refused before sending, with the spend-cap limit.
async fn cap_holds_across_processes(hosts: &Hosts<'_>) {
    const N: usize = 6;
    const K: usize = 2;
    // Slow answers keep every reservation in flight while the others check the cap.
    hosts.fake.inject(Fault::always(
        RouteMatch::post(FLUX_PATH),
        FaultKind::SlowFirstByte(Duration::from_millis(300)),
    ));
    let audits: Vec<PathBuf> = (0..N)
        .map(|i| hosts.dir.join(format!("audit-{i}.jsonl")))
        .collect();
    let args = flux_args();
    let runs: Vec<_> = audits
        .iter()
        .map(|a| hosts.call("payer", Some(a), "infer", &args))
        .collect();
    let outs = futures_join_all(runs).await;
    let mut ok = 0;
    for (out, audit) in outs.iter().zip(&audits) {
        let v = stdout_json(out, "theta-host call infer");
        if out.status.success() {
            assert_eq!(v["state"], "success", "{v}");
            ok += 1;
            continue;
        }
        assert_eq!(out.status.code(), Some(2), "{v}");
        assert_eq!(v["error"]["kind"], "limit", "{v}");
        let reason = v["error"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("spend cap reached for tenant `payer`"),
            "{reason}"
        );
        let lines = audit_lines(audit);
        assert!(
            lines
                .iter()
                .any(|l| l["decision"] == "limit" && l["path"] == FLUX_PATH),
            "the refusal is audited as a limit: {lines:?}"
        );
    }
    assert_eq!(
        count(hosts.fake, "POST", FLUX_PATH),
        K,
        "exactly K paid requests reached Theta"
    );
    assert_eq!(ok, K, "exactly K calls succeeded");
    let row = hosts.spend("payer").await;
    assert!(close(usd(&row["spent_usd"]), 0.02), "{row}");
    assert!(close(usd(&row["reserved_usd"]), 0.0), "{row}");
    assert_eq!(row["open_reservations"], 0, "{row}");
    assert!(close(usd(&row["cap_usd"]), 0.025), "{row}");
}

/// `join_all` without the futures crate: the processes run at once, results in order.
async fn futures_join_all<F, T>(futures: Vec<F>) -> Vec<T>
where
    F: Future<Output = T>,
{
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<T>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n_processes_on_one_sqlite_store_send_exactly_the_capped_requests() {
    let fake = crate::common::fake().await;
    let hosts = Hosts::new("sqlite-cap", &fake, "spend.db", PAYER).await;
    cap_holds_across_processes(&hosts).await;
    hosts
        .sqlite()
        .await
        .verify()
        .await
        .expect("counters add up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_on_one_postgres_store_send_exactly_the_capped_requests() {
    let Some(url) = pg_store("cap").await else {
        return;
    };
    let fake = crate::common::fake().await;
    let hosts = Hosts::new("pg-cap", &fake, &url, PAYER).await;
    cap_holds_across_processes(&hosts).await;
    let store = SpendStore::open(&url).await.expect("the store opens");
    store.verify().await.expect("counters add up");
    // The URL's password never shows.
    let out = hosts
        .command("payer", None)
        .args(["spend", "--json"])
        .output()
        .await
        .unwrap();
    let v = ok_json(&out, "spend --json");
    assert!(v["store"].as_str().unwrap().starts_with("postgres"), "{v}");
    if let Some(pw) = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .and_then(|auth| auth.split(':').nth(1))
    {
        assert!(!String::from_utf8_lossy(&out.stdout).contains(pw), "{v}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3: crash safety

const CRASH: &str = r#"
[pricing.services]
flux = 0.01

[tenants.payer]
commands = ["*"]
effects = ["read", "mutate", "spend"]
spend_cap_usd = 0.5
# A killed process holds its call slot until the slot's TTL (wall clock + 10 s).
max_concurrent_calls = 32
"#;

/// `kill -9` while a paid request is in flight: on restart the store opens, the reservation is
/// still counted (reserved, once), a later call adds its own price only, and the operator's
/// `theta-host spend --release ID` gives the dead host's reservation back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_paid_call_keeps_the_reservation_counted_once_until_released() {
    let fake = crate::common::fake().await;
    let hosts = Hosts::new("crash", &fake, "spend.db", CRASH).await;
    fake.inject(Fault::once(RouteMatch::post(FLUX_PATH), FaultKind::Hang));
    let mut child = hosts.spawn_call("payer", "infer", &flux_args());
    until(&mut child, "the paid request reached the fake", || {
        count(&fake, "POST", FLUX_PATH) == 1
    })
    .await;
    kill9(&mut child).await;

    // The store opens (a fresh process) and still counts the dead host's reservation.
    let row = hosts.spend("payer").await;
    assert!(close(usd(&row["reserved_usd"]), 0.01), "{row}");
    assert!(close(usd(&row["spent_usd"]), 0.0), "{row}");
    assert_eq!(row["open_reservations"], 1, "{row}");
    let store = hosts.sqlite().await;
    store.verify().await.expect("counters add up after kill -9");
    let open = store.open_reservations(Some("payer")).await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].micros, 10_000);
    let id = open[0].id;

    // Restart: a new paid call is counted once, next to the open reservation.
    let out = hosts.call("payer", None, "infer", &flux_args()).await;
    assert_eq!(ok_json(&out, "infer")["state"], "success");
    assert_eq!(count(&fake, "POST", FLUX_PATH), 2);
    let row = hosts.spend("payer").await;
    assert!(close(usd(&row["spent_usd"]), 0.01), "{row}");
    assert!(close(usd(&row["reserved_usd"]), 0.01), "{row}");
    assert_eq!(row["open_reservations"], 1, "{row}");

    // The operator releases it, once.
    let release = |id: i64| {
        let mut cmd = hosts.command("payer", None);
        cmd.args(["spend", "--release", &id.to_string()]);
        cmd
    };
    let out = release(id).output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("reservation {id}: released")),
        "{text}"
    );
    let out = release(id).output().await.unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("was not open"),
        "{out:?}"
    );
    let row = hosts.spend("payer").await;
    assert!(close(usd(&row["spent_usd"]), 0.01), "{row}");
    assert!(close(usd(&row["reserved_usd"]), 0.0), "{row}");
    assert_eq!(row["open_reservations"], 0, "{row}");
    store.verify().await.expect("counters add up");
}

/// An operator must be able to find what to release: `theta-host spend --json` lists each tenant's
/// open reservations with their ids (`open: [{id, usd, what, host, created_unix_ms}]`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spend_json_lists_the_open_reservations_an_operator_may_release() {
    let fake = crate::common::fake().await;
    let hosts = Hosts::new("crash-list", &fake, "spend.db", CRASH).await;
    fake.inject(Fault::once(RouteMatch::post(FLUX_PATH), FaultKind::Hang));
    let mut child = hosts.spawn_call("payer", "infer", &flux_args());
    until(&mut child, "the paid request reached the fake", || {
        count(&fake, "POST", FLUX_PATH) == 1
    })
    .await;
    kill9(&mut child).await;
    let id = hosts
        .sqlite()
        .await
        .open_reservations(Some("payer"))
        .await
        .unwrap()[0]
        .id;
    let row = hosts.spend("payer").await;
    let open = row["open"]
        .as_array()
        .unwrap_or_else(|| panic!("no `open` list of reservations in {row}"));
    assert_eq!(open.len(), 1, "{row}");
    assert_eq!(open[0]["id"], id, "{row}");
    assert!(close(usd(&open[0]["usd"]), 0.01), "{row}");
}

/// `kill -9` at staggered moments of paid calls (loading, reserving, sending, settling): the store
/// always opens, its counters add up, and it never counts less than what reached Theta.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_any_moment_never_under_counts_and_the_store_opens() {
    let fake = crate::common::fake().await;
    let hosts = Hosts::new("crash-any", &fake, "spend.db", CRASH).await;
    const RUNS: u64 = 10;
    for i in 0..RUNS {
        let mut child = hosts.spawn_call("payer", "infer", &flux_args());
        tokio::time::sleep(Duration::from_millis(30 + i * 45)).await;
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let store = hosts.sqlite().await;
    store.verify().await.expect("counters add up after kills");
    let totals = store.totals("payer").await.unwrap();
    let sent = count(&fake, "POST", FLUX_PATH) as u64;
    assert!(
        totals.counted_micros() >= sent * 10_000,
        "under-counted: {totals:?} for {sent} requests that reached Theta"
    );
    assert!(totals.counted_micros() <= RUNS * 10_000, "{totals:?}");
    // Still usable.
    let out = hosts.call("payer", None, "infer", &flux_args()).await;
    assert_eq!(ok_json(&out, "infer")["state"], "success");
    let after = store.totals("payer").await.unwrap();
    assert_eq!(
        after.counted_micros(),
        totals.counted_micros() + 10_000,
        "{after:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4: validateDisposable killed at each step

const DISPOSER: &str = r#"
[pricing]
deployment_hourly_usd = 0.5

[tenants.disposer]
commands = ["*"]
effects = ["read", "mutate", "spend"]
spend_cap_usd = 5.0
wall_clock_seconds = 3
"#;

/// A readiness window that fits the tenant's 3 s wall clock (the plugin refuses one that does not).
fn validate_args() -> String {
    json!({"template_id": TEMPLATE, "ready_timeout_seconds": 2, "interval_seconds": 0.1})
        .to_string()
}

/// Who cleans up after the killed call.
enum Cleaner {
    /// `theta-host janitor` (one pass).
    JanitorPass,
    /// The next host start (`theta-host mcp` runs a pass as it starts).
    HostStart,
}

/// Kills `validateDisposable` once `at` holds, then shows the janitor cleaning up: the lease is
/// listed (disposable, with its expiry), and the first janitor pass after it expired deletes the
/// deployment (by its lease annotation when the create never answered) and audits it.
async fn killed_validate_is_cleaned_by_the_janitor(
    name: &str,
    fake: &FakeEdgeCloud,
    cleaner: Cleaner,
    at: impl FnMut() -> bool,
) {
    let hosts = Hosts::new(name, fake, "spend.db", DISPOSER).await;
    let mut child = hosts.spawn_call(
        "disposer",
        "theta.deployments.validateDisposable",
        &validate_args(),
    );
    until(&mut child, &format!("{name}: the step to kill at"), at).await;
    kill9(&mut child).await;
    let live = fake.deployments();
    assert_eq!(live.len(), 1, "{name}: {live:?}");
    let row = hosts.spend("disposer").await;
    let leases = row["leases"].as_array().unwrap();
    assert_eq!(leases.len(), 1, "{name}: {row}");
    let lease = &leases[0];
    assert_eq!(lease["disposable"], true, "{name}: {row}");
    assert_eq!(
        live[0]["Annotations"]["theta-host-lease"],
        lease["lease"].to_string(),
        "{name}: the deployment carries its lease id"
    );
    // Its life is the call's wall clock: after that no call can still own it.
    let expires = lease["expires_unix_ms"].as_i64().unwrap();
    let wait = (expires - now_ms()).max(0) as u64 + 100;
    assert!(wait < 10_000, "{name}: expires in {wait} ms");
    tokio::time::sleep(Duration::from_millis(wait)).await;

    let audit = hosts.dir.join("janitor.jsonl");
    match cleaner {
        Cleaner::JanitorPass => {
            let done = hosts.janitor(&audit).await;
            assert!(
                fake.deployments().is_empty(),
                "{name}: left billing after the janitor pass {done}: {:?}",
                fake.deployments()
            );
            assert_eq!(done.as_array().map(Vec::len), Some(1), "{name}: {done}");
            assert_eq!(done[0]["outcome"], "deleted", "{name}: {done}");
            assert_eq!(done[0]["lease"], lease["lease"], "{name}: {done}");
        }
        Cleaner::HostStart => {
            // `theta-host mcp` runs a janitor pass as it starts (stdin stays open: it keeps serving).
            let mut mcp = hosts
                .command("disposer", Some(&audit))
                .arg("mcp")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("theta-host mcp starts");
            until(
                &mut mcp,
                &format!("{name}: the host start deleted it"),
                || fake.deployments().is_empty(),
            )
            .await;
            // The audit line is written right after the delete answers.
            until(
                &mut mcp,
                &format!("{name}: the deletion is audited"),
                || {
                    audit_lines(&audit)
                        .iter()
                        .any(|l| l["command"] == "janitor")
                },
            )
            .await;
            kill9(&mut mcp).await;
        }
    }
    let lines = audit_lines(&audit);
    let suffix = live[0]["Suffix"].as_str().unwrap();
    assert!(
        lines.iter().any(|l| l["command"] == "janitor"
            && l["method"] == "DELETE"
            && l["path"] == format!("/deployment/1/{suffix}")
            && l["outcome"] == "deleted"),
        "{name}: {lines:?}"
    );
    let row = hosts.spend("disposer").await;
    assert_eq!(row["leases"], json!([]), "{name}: {row}");
    // Nothing left for another pass.
    assert_eq!(hosts.janitor(&audit).await, json!([]), "{name}");
    hosts
        .sqlite()
        .await
        .verify()
        .await
        .expect("counters add up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_disposable_killed_before_the_create_answers_is_found_by_its_annotation() {
    let fake = fake_all(|_| {}).await;
    // The create takes effect at once; its answer never arrives before the kill.
    fake.inject(Fault::once(
        RouteMatch::post("/deployment").on_host(CTL),
        FaultKind::SlowAnswer(Duration::from_secs(30)),
    ));
    let cleaner = Cleaner::JanitorPass;
    killed_validate_is_cleaned_by_the_janitor("before-create-answers", &fake, cleaner, || {
        !fake.deployments().is_empty()
    })
    .await;
}

/// The same, cleaned by the next host start instead of a janitor run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_disposable_killed_before_the_create_answers_is_deleted_at_the_next_host_start() {
    let fake = fake_all(|_| {}).await;
    fake.inject(Fault::once(
        RouteMatch::post("/deployment").on_host(CTL),
        FaultKind::SlowAnswer(Duration::from_secs(30)),
    ));
    killed_validate_is_cleaned_by_the_janitor("host-start", &fake, Cleaner::HostStart, || {
        !fake.deployments().is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_disposable_killed_while_polling_readiness_is_deleted_by_the_janitor() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![502; 10_000]).await;
    killed_validate_is_cleaned_by_the_janitor("polling", &fake, Cleaner::JanitorPass, || {
        count(&fake, "GET", "/v1/models") >= 3
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_disposable_killed_during_the_probe_is_deleted_by_the_janitor() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![]).await;
    fake.inject(Fault::always(
        RouteMatch::get("/v1/models"),
        FaultKind::Hang,
    ));
    killed_validate_is_cleaned_by_the_janitor("probe", &fake, Cleaner::JanitorPass, || {
        count(&fake, "GET", "/v1/models") == 1
    })
    .await;
}

/// A CLI call stopped by its wall clock deletes its disposable deployment before the process exits
/// (no janitor needed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_disposable_stopped_by_the_wall_clock_deletes_before_the_process_exits() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![502; 10_000]).await;
    // The window fits the 1 s wall clock (the plugin refuses one that does not), but every poll
    // is slow: the host's wall clock ends the call before the plugin's window does.
    fake.inject(Fault::always(
        RouteMatch::get("/v1/models"),
        FaultKind::SlowFirstByte(Duration::from_millis(400)),
    ));
    let hosts = Hosts::new(
        "wall-clock",
        &fake,
        "spend.db",
        &DISPOSER.replace("wall_clock_seconds = 3", "wall_clock_seconds = 1"),
    )
    .await;
    let out = hosts
        .call(
            "disposer",
            None,
            "theta.deployments.validateDisposable",
            &json!({"template_id": TEMPLATE, "ready_timeout_seconds": 0.5, "interval_seconds": 0.1})
                .to_string(),
        )
        .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wall-clock"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&fake, "POST", "/deployment"), 1);
    assert!(
        fake.deployments().is_empty(),
        "the process exited and left its disposable deployment billing: {:?}",
        fake.deployments()
    );
    let row = hosts.spend("disposer").await;
    assert_eq!(row["leases"], json!([]), "{row}");
}

// ---------------------------------------------------------------------------------------------
// 5: deployment leases

const BUILDERS: &str = r#"
[pricing]
deployment_hourly_usd = 1.0

[pricing.vm_hourly]
vm_gt1 = 0.5

[tenants.builder]
commands = ["*"]
effects = ["read", "mutate", "spend"]
spend_cap_usd = 1.5
max_deployment_hours = 2

[tenants.small]
commands = ["*"]
effects = ["read", "mutate", "spend"]
spend_cap_usd = 0.75
max_deployment_hours = 2
"#;

fn create_args() -> String {
    json!({"template_id": TEMPLATE, "vm_id": "vm_gt1"}).to_string()
}

fn denied_for_cap(out: &Output) {
    let v = stdout_json(out, "create");
    assert_eq!(v["error"]["kind"], "limit", "{v}");
    assert!(
        v["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("spend cap reached"),
        "{v}"
    );
}

/// A create is charged max_deployment_hours × hourly up front; one whose hours do not fit is never
/// sent; `theta-host spend --json` shows the live lease with its expiry and hourly price.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_is_charged_its_hours_up_front_and_one_over_the_cap_is_never_sent() {
    let fake = fake_all(|_| {}).await;
    let hosts = Hosts::new("leases", &fake, "spend.db", BUILDERS).await;
    // 2 h × $0.50 = $1.00 > $0.75: refused before anything is sent.
    let out = hosts
        .call("small", None, "theta.deployments.create", &create_args())
        .await;
    denied_for_cap(&out);
    assert_eq!(count(&fake, "POST", "/deployment"), 0, "nothing was sent");
    assert!(fake.deployments().is_empty());
    let row = hosts.spend("small").await;
    assert!(close(usd(&row["spent_usd"]), 0.0), "{row}");
    assert!(close(usd(&row["reserved_usd"]), 0.0), "{row}");

    // $1.00 of $1.50: created and charged.
    let before = now_ms();
    let out = hosts
        .call("builder", None, "theta.deployments.create", &create_args())
        .await;
    let created = ok_json(&out, "create");
    let after = now_ms();
    assert_eq!(created["vm_id"], "vm_gt1", "{created}");
    let d = &fake.deployments()[0];
    let row = hosts.spend("builder").await;
    assert!(close(usd(&row["spent_usd"]), 1.0), "{row}");
    assert!(close(usd(&row["reserved_usd"]), 0.0), "{row}");
    assert!(close(usd(&row["cap_usd"]), 1.5), "{row}");
    let leases = row["leases"].as_array().unwrap();
    assert_eq!(leases.len(), 1, "{row}");
    let l = &leases[0];
    assert_eq!(l["state"], "live", "{l}");
    assert_eq!(l["vm_type"], "vm_gt1", "{l}");
    assert_eq!(l["project"], PROJECT_ID, "{l}");
    assert_eq!(l["disposable"], false, "{l}");
    assert!(close(usd(&l["hourly_usd"]), 0.5), "{l}");
    assert_eq!(
        l["deployment"],
        format!("1/{}", d["Suffix"].as_str().unwrap()),
        "{l}"
    );
    let expires = l["expires_unix_ms"].as_i64().unwrap();
    let two_hours = 2 * 3_600_000;
    assert!(
        (before + two_hours..=after + two_hours).contains(&expires),
        "expires {expires}, created between {before} and {after}"
    );
    assert_eq!(
        d["Annotations"]["theta-host-lease"],
        l["lease"].to_string(),
        "{d}"
    );

    // Another $1.00 would pass $1.50: refused, not sent.
    let out = hosts
        .call("builder", None, "theta.deployments.create", &create_args())
        .await;
    denied_for_cap(&out);
    assert_eq!(count(&fake, "POST", "/deployment"), 1);
    assert_eq!(fake.deployments().len(), 1);
    // The janitor leaves a lease that has not expired alone.
    let audit = hosts.dir.join("janitor.jsonl");
    assert_eq!(hosts.janitor(&audit).await, json!([]));
    assert_eq!(fake.deployments().len(), 1);
    hosts
        .sqlite()
        .await
        .verify()
        .await
        .expect("counters add up");
}

/// A deployment straight on the fake's controller (not through the host), as one a host recorded
/// and then lost track of: returns its suffix.
async fn create_on_the_fake(fake: &FakeEdgeCloud, vm: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let before: Vec<Value> = fake.deployments();
    let body = json!({"project_id": PROJECT_ID, "deployment_template_id": TEMPLATE, "vm_id": vm})
        .to_string();
    let mut s = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();
    s.write_all(
        format!(
            "POST /deployment HTTP/1.1\r\nHost: {CTL}\r\nx-api-key: {EC_KEY}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let after = fake.deployments();
    let new = after
        .iter()
        .find(|d| !before.contains(d))
        .unwrap_or_else(|| panic!("no new deployment: {after:?}"));
    new["Suffix"].as_str().unwrap().to_owned()
}

/// A lease whose expiry passed is deleted by `theta-host janitor`, the deletion audited (command
/// `janitor`); a live lease is left alone, and the next pass has nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_janitor_deletes_an_expired_lease_and_audits_it() {
    let fake = fake_all(|_| {}).await;
    let hosts = Hosts::new("expired", &fake, "spend.db", BUILDERS).await;
    // A live lease (2 h) through the host.
    let out = hosts
        .call("builder", None, "theta.deployments.create", &create_args())
        .await;
    ok_json(&out, "create");
    let kept = fake.deployments()[0]["Suffix"].as_str().unwrap().to_owned();
    // A lease that already expired (max_deployment_hours is at least 1: written with the store API).
    let suffix = create_on_the_fake(&fake, "vm_gt2").await;
    let store = hosts.sqlite().await;
    let id = store
        .lease_intent(
            NewLease {
                tenant: "small".into(),
                project: PROJECT_ID.into(),
                vm_type: "vm_gt2".into(),
                hourly_micros: 500_000,
                disposable: false,
                owner: None,
                prepaid_hours: 1,
                expires_at_unix_ms: Some(now_ms() - 1_000),
                host_id: "e2e:expired".into(),
            },
            750_000,
        )
        .await
        .unwrap();
    store.lease_created(id, "1", &suffix).await.unwrap();
    let row = hosts.spend("small").await;
    assert_eq!(row["leases"][0]["lease"], id, "{row}");
    assert!(close(usd(&row["spent_usd"]), 0.5), "{row}");

    let audit = hosts.dir.join("janitor.jsonl");
    let done = hosts.janitor(&audit).await;
    assert_eq!(done.as_array().map(Vec::len), Some(1), "{done}");
    assert_eq!(done[0]["lease"], id, "{done}");
    assert_eq!(done[0]["tenant"], "small", "{done}");
    assert_eq!(done[0]["outcome"], "deleted", "{done}");
    assert_eq!(done[0]["deployment"], format!("1/{suffix}"), "{done}");
    let left: Vec<String> = fake
        .deployments()
        .iter()
        .map(|d| d["Suffix"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        left,
        vec![kept],
        "the expired one is gone, the live one kept"
    );
    let lines = audit_lines(&audit);
    let line = lines
        .iter()
        .find(|l| l["command"] == "janitor")
        .unwrap_or_else(|| panic!("no janitor line: {lines:?}"));
    assert_eq!(line["tenant"], "small", "{line}");
    assert_eq!(line["method"], "DELETE", "{line}");
    assert_eq!(line["host"], CTL, "{line}");
    assert_eq!(line["path"], format!("/deployment/1/{suffix}"), "{line}");
    assert_eq!(line["outcome"], "deleted", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert!(
        line["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("lease {id}")),
        "{line}"
    );
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .count(),
        1
    );
    // Closed: no longer listed, its hour stays charged, and the next pass does nothing.
    let row = hosts.spend("small").await;
    assert_eq!(row["leases"], json!([]), "{row}");
    assert!(close(usd(&row["spent_usd"]), 0.5), "{row}");
    assert_eq!(hosts.janitor(&audit).await, json!([]));
    assert_eq!(fake.deployments().len(), 1);
    store.verify().await.expect("counters add up");
}

// ---------------------------------------------------------------------------------------------
// 6: request rate and call slots across processes

const LIMITED: &str = r#"
[tenants.limited]
commands = ["*"]
effects = ["read"]
requests_per_minute = 4

[tenants.single]
commands = ["*"]
effects = ["read"]
max_concurrent_calls = 1
"#;

/// requests_per_minute = 4, three processes making three calls each in one minute: four requests
/// reach the fake, the others are refused with the rate limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_request_rate_holds_across_processes() {
    const R: usize = 4;
    let fake = crate::common::fake().await;
    let hosts = Hosts::new("rate", &fake, "spend.db", LIMITED).await;
    // The limit counts per wall-clock minute: start early in one, so the test stays inside it.
    let in_minute = now_ms().rem_euclid(60_000);
    if in_minute > 35_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - in_minute + 200) as u64)).await;
    }
    let minute = now_ms() / 60_000;
    let h = &hosts;
    let worker = move |_: usize| async move {
        let mut outs = Vec::new();
        for _ in 0..3 {
            outs.push(h.call("limited", None, "list_services", "{}").await);
        }
        outs
    };
    let outs: Vec<Output> = futures_join_all((0..3).map(worker).collect())
        .await
        .into_iter()
        .flatten()
        .collect();
    let same_minute = now_ms() / 60_000 == minute;
    let reached = count(&fake, "GET", "/service/list");
    let ok = outs.iter().filter(|o| o.status.success()).count();
    for out in outs.iter().filter(|o| !o.status.success()) {
        let v = stdout_json(out, "list_services");
        let reason = v["error"]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("over its request rate of 4 per minute"),
            "{v}"
        );
    }
    assert_eq!(ok, reached, "each call makes one request");
    if same_minute {
        assert_eq!(reached, R, "exactly the rate reached Theta in one minute");
    } else {
        println!("note: the calls spanned two rate windows");
        assert!(reached <= 2 * R, "{reached}");
    }
}

/// Sequential CLI calls of a tenant with one call slot all run: each process gives its slot back
/// when it ends (a slot left held would refuse the next call for the slot's whole TTL).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sequential_processes_give_their_call_slot_back() {
    let fake = crate::common::fake().await;
    let hosts = Hosts::new("slots", &fake, "spend.db", LIMITED).await;
    for i in 0..4 {
        let out = hosts.call("single", None, "list_services", "{}").await;
        assert!(
            out.status.success(),
            "call {i}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Two at once: one runs, the other is refused for the slot (not for anything else).
    fake.inject(Fault::once(
        RouteMatch::get("/service/list"),
        FaultKind::SlowFirstByte(Duration::from_secs(2)),
    ));
    let mut slow = hosts.spawn_call("single", "list_services", "{}");
    until(&mut slow, "the first call is in flight", || {
        count(&fake, "GET", "/service/list") == 5
    })
    .await;
    let out = hosts.call("single", None, "list_services", "{}").await;
    let v = stdout_json(&out, "list_services");
    assert!(
        v["error"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("already has 1 calls running"),
        "{v}"
    );
    let first = slow.wait_with_output().await.unwrap();
    assert!(first.status.success(), "{first:?}");
}

//! The applier lease's heartbeat on MLflow, with TTLs short enough to
//! expire within a test: a killed holder's lease is taken over once it has
//! expired, never before, and the rerun converges without registering
//! anything twice; a long apply keeps its lease while a second apply waits
//! (announcing it once); a holder that cannot renew stops writing before
//! its lease expires and exits 1.
//!
//! A loaded 2-core CI machine may take seconds per MLflow request, so the
//! assertions are about order (the expiry before the take-over, the last
//! write before the expiry) and every wait has a generous deadline; the
//! TTLs leave the heartbeat room (a renewal every TTL/3, the deadline TTL
//! minus a fifth after it).

use std::time::{Duration, Instant};

use modelsync::registry::Registry;

use super::lease::{EXPIRES_TAG, finish, lease_expires, lease_holder, model, signal, spawn};
use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{server, unique};
use crate::support::proxy::{Fault, Proxy, Seen};

/// The lease's TTL in these tests: its deadline is 16 s after each
/// renewal, which comes every 6.7 s.
const TTL: Duration = Duration::from_secs(20);
const TTL_ENV: (&str, &str) = ("MODELSYNC_LEASE_TTL", "20s");
/// A deadline on a loaded CI machine, not a claim about speed.
const LOADED: Duration = Duration::from_secs(300);

/// `n` one-version models in `w`'s `m/`.
pub(super) fn models(w: &Workdir, prefix: &str, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:02}")).collect();
    for n in &names {
        w.write(&format!("m/{n}.yaml"), &model(n));
    }
    names
}

/// Writes the proxy saw, except the lease's own and read-only searches.
fn model_writes(p: &Proxy, lease: &str) -> Vec<Seen> {
    p.seen()
        .into_iter()
        .filter(|s| s.method != "GET" && !s.path.contains("search") && !s.body.contains(lease))
        .collect()
}

fn created(p: &Proxy, prefix: &str) -> usize {
    p.seen()
        .iter()
        .filter(|s| s.path.contains("registered-models/create") && s.body.contains(prefix))
        .count()
}

/// Waits, polling, until `done` holds; fails after `limit`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every model has exactly one version (nothing registered twice).
pub(super) async fn one_version_each(names: &[String]) {
    let reg = server().registry();
    for n in names {
        let m = reg.get_model(n).await.expect("read").expect("exists");
        assert_eq!(m.versions.len(), 1, "{n}: {m:?}");
    }
}

fn converged(w: &Workdir, uri: &str) {
    let r = w.run(&["--registry", uri, "plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "converged: {r:?}");
}

/// kill -9 mid-apply, rerun at once: the rerun waits for the killed
/// holder's lease to expire and takes it over — its first model write comes
/// after that expiry, never before — converges, and registers no source
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_apply_is_taken_over_once_expired() {
    let srv = server();
    let prefix = unique("hb-kill");
    let w = Workdir::new();
    let names = models(&w, &prefix, 20);
    let first = Proxy::start(&srv.url).await;
    first.fail("POST", "", Fault::Delay(Duration::from_millis(100)), 10_000);
    let child = spawn(
        &w,
        &first.url,
        &[TTL_ENV],
        &["apply", "m", "--concurrency", "1"],
    );
    wait_for("3 models", LOADED, || created(&first, &prefix) >= 3);
    signal(&child, "KILL");
    let r = finish(child, LOADED);
    assert_ne!(r.code, 0, "{r:?}");
    // When the killed holder's lease expires: its last renewal can only
    // move this later, never earlier.
    let expires_ms = lease_expires(&w)
        .await
        .expect("the killed apply left its lease");
    let now = (Instant::now(), wall_ms());
    let expiry = now.0 + Duration::from_millis((expires_ms - now.1).max(0) as u64);

    let second = Proxy::start(&srv.url).await;
    let rerun = Instant::now();
    let r = Run::from_command(
        w.command(&["--registry", &second.url, "apply", "m"])
            .env(TTL_ENV.0, TTL_ENV.1)
            .env("MODELSYNC_LEASE_WAIT", "600s"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("taking over an expired lease"), "{r:?}");
    let lease = w.lease_name();
    let first_write = model_writes(&second, &lease)
        .first()
        .map(|s| s.at)
        .expect("the rerun wrote");
    eprintln!(
        "kill -9 -> expiry {:?} after the rerun started; its first write {:?} after",
        expiry.saturating_duration_since(rerun),
        first_write.saturating_duration_since(rerun)
    );
    // 100 ms for sampling the two clocks apart.
    assert!(
        first_write + Duration::from_millis(100) >= expiry,
        "the rerun wrote {:?} before the killed holder's lease expired",
        expiry.saturating_duration_since(first_write)
    );
    one_version_each(&names).await;
    converged(&w, &srv.url);
}

fn wall_ms() -> i64 {
    modelsync::clock::wall_ms()
}

/// An apply longer than the TTL keeps its lease (the heartbeat renews it):
/// a second apply started meanwhile waits, says so once although it polls
/// many times, never takes over, and finds nothing left to do. Every write
/// is delayed by the proxy, so the apply outlasts the TTL however fast the
/// machine is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_apply_keeps_its_lease_and_the_waiter_says_so_once() {
    let srv = server();
    let prefix = unique("hb-long");
    let w = Workdir::new();
    let names = models(&w, &prefix, 16);
    let proxy = Proxy::start(&srv.url).await;
    proxy.fail("POST", "", Fault::Delay(Duration::from_millis(500)), 10_000);
    let start = Instant::now();
    let child = spawn(
        &w,
        &proxy.url,
        &[TTL_ENV],
        &["apply", "m", "--concurrency", "1"],
    );
    wait_for("a model", LOADED, || created(&proxy, &prefix) >= 1);
    let waiter = spawn(
        &w,
        &srv.url,
        &[TTL_ENV, ("MODELSYNC_LEASE_WAIT", "900s")],
        &["apply", "m"],
    );
    let first = finish(child, LOADED * 2);
    let first_took = start.elapsed();
    let second = finish(waiter, LOADED);
    eprintln!("the long apply took {first_took:?}");
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first_took > TTL, "not longer than the TTL: {first_took:?}");
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(
        second
            .stderr
            .matches("waiting for the applier lease")
            .count(),
        1,
        "{second:?}"
    );
    assert!(second.stderr.contains("until"), "{second:?}");
    assert!(!second.stderr.contains("taking over"), "{second:?}");
    assert!(!first.stderr.contains("taken over"), "{first:?}");
    let renewals = proxy
        .seen()
        .iter()
        .filter(|s| s.path.contains("registered-models/set-tag") && s.body.contains(EXPIRES_TAG))
        .count();
    assert!(renewals >= 2, "{renewals} renewals in {first_took:?}");
    one_version_each(&names).await;
    converged(&w, &srv.url);
}

/// Every renewal answered 503: the holder stops writing before its
/// deadline (taken + TTL - margin), skips the rest, exits 1 saying it lost
/// the lease; every model write reaches the proxy before the lease expires
/// (taken + TTL: when another applier may take it over), the margin
/// covering a request sent just before the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_cannot_renew_stops_before_its_deadline() {
    let srv = server();
    let prefix = unique("hb-lost");
    let w = Workdir::new();
    let names = models(&w, &prefix, 30);
    let proxy = Proxy::start(&srv.url).await;
    proxy.fail_body(
        "POST",
        "registered-models/set-tag",
        EXPIRES_TAG,
        Fault::Status(503),
        10_000,
    );
    // 30 models of about four writes each take 30 s at least: longer than
    // the deadline, however fast the machine is.
    proxy.fail("POST", "", Fault::Delay(Duration::from_millis(250)), 10_000);
    let child = spawn(
        &w,
        &proxy.url,
        &[TTL_ENV],
        &["apply", "m", "--concurrency", "1"],
    );
    let r = finish(child, LOADED);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("lost the applier lease"), "{r:?}");
    assert!(
        r.stdout.contains("lost the applier lease"),
        "skipped actions: {r:?}"
    );
    let lease = w.lease_name();
    let seen = proxy.seen();
    let taken = seen
        .iter()
        .find(|s| s.path.contains("registered-models/create") && s.body.contains(&lease))
        .expect("the lease was created")
        .at;
    let renewals = seen
        .iter()
        .filter(|s| s.body.contains(EXPIRES_TAG) && s.path.contains("set-tag"))
        .count();
    assert!(renewals >= 1, "no renewal tried");
    let writes = model_writes(&proxy, &lease);
    assert!(!writes.is_empty());
    let last = writes.last().expect("writes").at.duration_since(taken);
    eprintln!("last model write {last:?} after the lease was taken");
    assert!(
        last < TTL,
        "a write {last:?} after the lease was taken: expired"
    );
    let reg = srv.registry();
    let mut present = 0;
    for n in &names {
        if reg.get_model(n).await.expect("read").is_some() {
            present += 1;
        }
    }
    assert!(present < names.len(), "{present} models created");
    assert!(lease_holder(&w).await.is_none(), "released at exit");
}

//! The applier lease on MLflow: a cancelled apply (SIGTERM, SIGINT)
//! finishes the model in flight and releases it; a signal while waiting for
//! it ends the wait; it runs on the wall clock, whatever `MODELSYNC_NOW`
//! says. MLflow only: the embedded registry's lease is its file lock.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use modelsync::registry::Registry;
use modelsync::state::Stage;

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{server, unique};
use crate::support::proxy::{Fault, Proxy};

/// A deadline on a loaded CI machine, not a claim about speed.
const LOADED: Duration = Duration::from_secs(120);

pub(super) const HOLDER_TAG: &str = "modelsync.lease.holder";
pub(super) const EXPIRES_TAG: &str = "modelsync.lease.expires";

pub(super) fn model(name: &str) -> String {
    crate::support::backend::manifest(
        name,
        &format!(
            "  versions:\n    a: {{source: \"s3://bucket/{name}/a\"}}\n  stages:\n    Production: a\n  aliases:\n    champion: a\n"
        ),
    )
}

pub(super) fn wall_ms() -> i64 {
    modelsync::clock::wall_ms()
}

/// Another applier's lease on `w`'s lease model, expiring `expires_in_ms`
/// from now by the wall clock (as `src/registry/mlflow/lease.rs` writes it).
pub(super) async fn foreign_lease(w: &Workdir, expires_in_ms: i64) -> String {
    let holder = "elsewhere:1:feedface".to_string();
    let tags = BTreeMap::from([
        (HOLDER_TAG.to_string(), holder.clone()),
        (
            EXPIRES_TAG.to_string(),
            (wall_ms() + expires_in_ms).to_string(),
        ),
    ]);
    server()
        .registry()
        .create_model(&w.lease_name(), Some("held by another applier"), &tags)
        .await
        .expect("create the lease model");
    holder
}

/// When `w`'s lease expires (ms since the epoch), if it is held.
pub(super) async fn lease_expires(w: &Workdir) -> Option<i64> {
    let m = server()
        .registry()
        .get_model(&w.lease_name())
        .await
        .expect("read the lease");
    m.and_then(|m| m.tags.get(EXPIRES_TAG)?.parse().ok())
}

pub(super) async fn lease_holder(w: &Workdir) -> Option<String> {
    let m = server()
        .registry()
        .get_model(&w.lease_name())
        .await
        .expect("read the lease");
    m.and_then(|m| m.tags.get(HOLDER_TAG).cloned())
}

pub(super) fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -{sig}");
}

/// Waits (at most `timeout`) for the child to exit; its run.
pub(super) fn finish(mut child: Child, timeout: Duration) -> Run {
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("still running {timeout:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)
        .expect("stdout");
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("stderr");
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

pub(super) fn spawn(w: &Workdir, uri: &str, env: &[(&str, &str)], args: &[&str]) -> Child {
    let mut all = vec!["--registry", uri];
    all.extend_from_slice(args);
    let mut cmd = w.command(&all);
    cmd.envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("spawn modelsync")
}

/// 30 models applied one at a time through a proxy that slows every write;
/// `sig` arrives once a few models exist. The apply finishes the model in
/// flight, starts no other, releases the lease and exits 1 saying so; each
/// model is untouched or fully applied; the next apply does not wait.
async fn cancelled_apply_releases_the_lease(sig: &str) {
    let srv = server();
    let prefix = unique(&format!("pass-{}", sig.to_lowercase()));
    let w = Workdir::new();
    let names: Vec<String> = (0..30).map(|i| format!("{prefix}-{i:02}")).collect();
    for n in &names {
        w.write(&format!("m/{n}.yaml"), &model(n));
    }
    let proxy = Proxy::start(&srv.url).await;
    proxy.fail("POST", "", Fault::Delay(Duration::from_millis(100)), 10_000);
    let child = spawn(&w, &proxy.url, &[], &["apply", "m", "--concurrency", "1"]);
    let created = |p: &Proxy| {
        p.seen()
            .iter()
            .filter(|s| s.path.contains("registered-models/create") && s.body.contains(&prefix))
            .count()
    };
    let start = Instant::now();
    while created(&proxy) < 3 {
        assert!(start.elapsed() < LOADED, "apply too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, sig);
    let signalled = Instant::now();
    let r = finish(child, LOADED);
    eprintln!("{sig} -> exit: {:?}", signalled.elapsed());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("interrupted"), "{r:?}");
    assert!(lease_holder(&w).await.is_none(), "lease left behind: {r:?}");
    // Every model is untouched or fully applied, and some are each.
    let reg = srv.registry();
    let mut applied = 0;
    for n in &names {
        let Some(m) = reg.get_model(n).await.expect("read") else {
            continue;
        };
        assert_eq!(m.versions.len(), 1, "{n}: {m:?}");
        assert_eq!(m.versions[&1].stage, Stage::Production, "{n}: {m:?}");
        assert_eq!(m.aliases.get("champion"), Some(&1), "{n}: {m:?}");
        assert!(m.tags.contains_key("modelsync.managed"), "{n}: {m:?}");
        applied += 1;
    }
    assert!(
        (3..names.len()).contains(&applied),
        "{applied} models applied"
    );
    assert!(r.stdout.contains("skipped"), "{r:?}");
    // The next apply takes the lease at once (it would give up after 1 s).
    let again = Instant::now();
    let mut all = vec!["--registry", srv.url.as_str(), "apply", "m"];
    let r = Run::from_command(w.command(&all).env("MODELSYNC_LEASE_WAIT", "1s"));
    assert_eq!(r.code, 0, "{r:?}");
    eprintln!("the next apply: {:?}", again.elapsed());
    all.extend(["--detailed-exitcode"]);
    all[2] = "plan";
    let r = Run::from_command(&mut w.command(&all));
    assert_eq!(r.code, 0, "converged: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_apply_releases_the_lease() {
    cancelled_apply_releases_the_lease("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_apply_releases_the_lease() {
    cancelled_apply_releases_the_lease("INT").await;
}

/// A signal while waiting for another applier's lease ends the wait:
/// exit 1 saying it was interrupted (not that it gave up waiting), nothing
/// written, the other holder's lease left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_while_waiting_for_the_lease_exits_promptly() {
    let srv = server();
    let name = unique("pass-waiting");
    let w = Workdir::new();
    w.write("m/model.yaml", &model(&name));
    let other = foreign_lease(&w, 600_000).await;
    let proxy = Proxy::start(&srv.url).await;
    let env = [("MODELSYNC_LEASE_WAIT", "600s")];
    let child = spawn(&w, &proxy.url, &env, &["apply", "m"]);
    // Waiting: it has read the other holder's lease, announced the wait,
    // and read the lease again.
    let lease = w.lease_name();
    let reads = |p: &Proxy| {
        p.seen()
            .iter()
            .filter(|s| s.path.contains("registered-models/get") && s.path.contains(&lease))
            .count()
    };
    let start = Instant::now();
    while reads(&proxy) < 2 {
        assert!(start.elapsed() < LOADED, "never waited for the lease");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "TERM");
    let signalled = Instant::now();
    // Long before its 600 s wait would end.
    let r = finish(child, LOADED);
    eprintln!("TERM while waiting -> exit: {:?}", signalled.elapsed());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("waiting for the applier lease") && r.stderr.contains("interrupted"),
        "{r:?}"
    );
    assert_eq!(lease_holder(&w).await, Some(other), "the other lease");
    assert!(
        srv.registry()
            .get_model(&name)
            .await
            .expect("read")
            .is_none()
    );
}

/// A lease another applier holds for 10 more minutes by the wall clock is
/// waited for and never taken over, even with `MODELSYNC_NOW` far in the
/// future; an expired one is taken over even with `MODELSYNC_NOW` in the
/// past.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_runs_on_the_wall_clock() {
    let srv = server();
    let name = unique("pass-wall");
    let w = Workdir::new();
    w.write("m/model.yaml", &model(&name));
    let other = foreign_lease(&w, 600_000).await;
    let uri = srv.url.clone();
    let start = Instant::now();
    let r = Run::from_command(
        w.command(&["--registry", &uri, "apply", "m"])
            .env("MODELSYNC_NOW", "2999-01-01T00:00:00Z")
            .env("MODELSYNC_LEASE_WAIT", "3s"),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(start.elapsed() >= Duration::from_secs(3), "{r:?}");
    assert!(
        r.stderr.contains("another modelsync holds the lease"),
        "{r:?}"
    );
    assert_eq!(lease_holder(&w).await, Some(other), "taken over");
    assert!(
        srv.registry()
            .get_model(&name)
            .await
            .expect("read")
            .is_none()
    );

    // Expired a minute ago by the wall clock; MODELSYNC_NOW is long before.
    srv.registry()
        .set_model_tag(
            &w.lease_name(),
            EXPIRES_TAG,
            &(wall_ms() - 60_000).to_string(),
        )
        .await
        .expect("expire the lease");
    let r = Run::from_command(
        w.command(&["--registry", &uri, "apply", "m"])
            .env("MODELSYNC_NOW", "2000-01-01T00:00:00Z")
            .env("MODELSYNC_LEASE_WAIT", "3s"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("expired lease"), "{r:?}");
    assert!(lease_holder(&w).await.is_none(), "released after use");
    let m = srv.registry().get_model(&name).await.expect("read");
    assert_eq!(m.expect("applied").versions[&1].stage, Stage::Production);
}

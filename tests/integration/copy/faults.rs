//! Faults during a copy, with the fault-injecting proxy in front of the
//! target: a connection reset mid-upload, a kill -9 mid-copy, and a
//! checksum mismatch. Each ends with exactly one version (or, refused,
//! none), never a second one.

use std::time::{Duration, Instant};

use modelsync::registry::Registry;

use super::{model, run, train, workdir};
use crate::support::cli::Run;
use crate::support::mlflow::unique;
use crate::support::pair;
use crate::support::proxy::{Fault, Proxy};

const ARTIFACTS: &str = "/api/2.0/mlflow-artifacts/artifacts/";

/// The proxy resets the connection of two uploads (after reading them) and
/// answers one registration 502 after forwarding it: apply retries the
/// files, finds the registered version, and ends with one version.
#[tokio::test(flavor = "multi_thread")]
async fn reset_mid_upload_converges_with_one_version() {
    let (dev, prod) = (pair::dev(), pair::prod());
    let proxy = Proxy::start(&prod.url).await;
    let source = unique("reset-dev");
    let target = unique("reset-prod");
    train(dev, &source, 0.95, 1.0);
    let wd = workdir(&dev.url, &source, &target, 0.9);
    proxy.fail("PUT", ARTIFACTS, Fault::Reset, 2);
    proxy.fail(
        "POST",
        "model-versions/create",
        Fault::ForwardThenStatus(502),
        1,
    );
    let applied = run(&wd, &proxy.url, &[], &["apply", "m"]);
    let again = run(&wd, &proxy.url, &[], &["apply", "m"]);
    assert_eq!(again.code, 0, "first: {applied:?}\nrerun: {again:?}");
    let m = model(&prod.registry(), &target).await;
    assert_eq!(m.versions.len(), 1, "exactly one version: {m:?}");
    assert_eq!(proxy.count("POST", "runs/create"), 1, "one run, reused");
}

/// apply is killed (SIGKILL) while its uploads are slowed down; the rerun
/// resumes the same run and registers exactly one version.
#[tokio::test(flavor = "multi_thread")]
async fn kill_mid_copy_then_rerun_converges() {
    let (dev, prod) = (pair::dev(), pair::prod());
    let proxy = Proxy::start(&prod.url).await;
    let source = unique("kill-dev");
    let target = unique("kill-prod");
    train(dev, &source, 0.95, 1.0);
    let wd = workdir(&dev.url, &source, &target, 0.9);
    proxy.fail("PUT", ARTIFACTS, Fault::Delay(Duration::from_secs(5)), 50);
    let log = wd.path().join("killed-apply.log");
    let mut child = wd
        .command(&["apply", "m"])
        .env("MODELSYNC_REGISTRY", &proxy.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn apply");
    let start = Instant::now();
    while proxy.count("PUT", ARTIFACTS) == 0 {
        if let Some(status) = child.try_wait().expect("poll apply") {
            panic!(
                "apply ended ({status}) before any upload:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "no upload began within 180 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    let reg = prod.registry();
    let none = reg.get_model(&target).await.expect("read");
    assert!(
        none.is_none_or(|m| m.versions.is_empty()),
        "a half-finished copy is never registered"
    );
    // The killed apply's lease (the suite's long TTL) has run out: its
    // expiry set to the past rather than waited for.
    let past = (modelsync::clock::wall_ms() - 1_000).to_string();
    reg.set_model_tag(&wd.lease_name(), "modelsync.lease.expires", &past)
        .await
        .expect("expire the killed apply's lease");
    let direct = run(&wd, &prod.url, &[], &["apply", "m"]);
    assert_eq!(direct.code, 0, "{direct:?}");
    assert!(direct.stderr.contains("resuming") || direct.code == 0);
    let m = model(&reg, &target).await;
    assert_eq!(m.versions.len(), 1, "{m:?}");
    assert_eq!(
        proxy.count("POST", "runs/create"),
        1,
        "the run was created once"
    );
}

/// The proxy corrupts what the target sends back for the copied MLmodel:
/// the checksum check refuses the copy, names the object, and nothing is
/// registered; without the fault the next apply completes it.
#[tokio::test(flavor = "multi_thread")]
async fn checksum_mismatch_is_refused() {
    let (dev, prod) = (pair::dev(), pair::prod());
    let proxy = Proxy::start(&prod.url).await;
    let source = unique("sum-dev");
    let target = unique("sum-prod");
    train(dev, &source, 0.95, 1.0);
    let wd = workdir(&dev.url, &source, &target, 0.9);
    proxy.fail(
        "GET",
        "/MLmodel",
        Fault::RewriteAnswer("flavors".into(), "flavorz".into()),
        10,
    );
    let refused: Run = run(&wd, &proxy.url, &[], &["apply", "m"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stdout.contains("checksum mismatch")
            || refused.stderr.contains("checksum mismatch"),
        "{refused:?}"
    );
    assert!(
        refused.stdout.contains("MLmodel") || refused.stderr.contains("MLmodel"),
        "{refused:?}"
    );
    let reg = prod.registry();
    let m = reg.get_model(&target).await.expect("read");
    assert!(
        m.is_none_or(|m| m.versions.is_empty()),
        "nothing registered"
    );
    let fixed = run(&wd, &prod.url, &[], &["apply", "m"]);
    assert_eq!(fixed.code, 0, "{fixed:?}");
    assert_eq!(model(&reg, &target).await.versions.len(), 1);
}

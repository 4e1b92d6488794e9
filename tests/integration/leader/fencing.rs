//! The fence in the executor, on the embedded registry (fast and exact):
//! a leader stamps its epoch and namespace on each model it writes (with
//! the creation of a new model), refuses a model stamped by a newer leader
//! of its namespace — and steps down, with that cause — re-stamps one
//! stamped in another namespace (or by an older release) without stepping
//! down, and writes nothing once its deadline passed.

use std::time::Duration;

use modelsync::apply::{self, ApplyOptions, Outcome};
use modelsync::manifest::{self, SourceFile};
use modelsync::plan::PlanContext;
use modelsync::reconcile;
use modelsync::registry::Registry;
use modelsync::state::tags;
use modelsync::term::{Fence, LOST_LEADERSHIP, LeaseGuard, Namespace};

use crate::support::embedded::TempRegistry;

fn namespace() -> Namespace {
    Namespace::postgres("0123abcd", "modelsync")
}

fn fence(epoch: u64) -> Fence {
    Fence {
        epoch,
        namespace: namespace(),
        guard: LeaseGuard::new(Duration::from_secs(30), modelsync::clock::wall_ms()),
    }
}

fn stamp(epoch: u64) -> String {
    format!("{epoch}@postgresql/0123abcd/modelsync")
}

fn opts(fence: Fence) -> ApplyOptions {
    ApplyOptions {
        concurrency: 2,
        revision: None,
        now_ms: modelsync::clock::wall_ms(),
        cancel: None,
        gates: Default::default(),
        approvals: Default::default(),
        lease: None,
        fence: Some(fence),
        progress: None,
        sources: Default::default(),
        break_glass: None,
    }
}

fn desired(description: &str) -> manifest::DesiredState {
    let yaml = super::manifest("fenced", true, description);
    manifest::load(&[SourceFile {
        path: "m/fenced.yaml".into(),
        contents: yaml.into_bytes(),
    }])
    .expect("valid")
}

async fn apply(reg: &TempRegistry, description: &str, fence: Fence) -> apply::ApplyReport {
    let ctx = PlanContext {
        now_ms: modelsync::clock::wall_ms(),
        prune: false,
        registry: String::new(),
        break_glass: None,
    };
    let (_, plan) = reconcile::plan(
        &reg.registry,
        &Default::default(),
        &desired(description),
        &ctx,
    )
    .await
    .expect("plan");
    assert!(!plan.is_empty());
    apply::execute(&reg.registry, &plan, &opts(fence)).await
}

async fn epoch_tag(reg: &TempRegistry) -> Option<String> {
    let m = reg
        .registry
        .get_model("fenced")
        .await
        .expect("read")
        .expect("exists");
    m.tags.get(tags::EPOCH).cloned()
}

#[tokio::test]
async fn a_leader_stamps_its_epoch_and_refuses_a_newer_one() {
    let reg = TempRegistry::new();
    let r = apply(&reg, "v1", fence(5)).await;
    assert_eq!(r.failed(), 0, "{r:?}");
    assert_eq!(epoch_tag(&reg).await, Some(stamp(5)), "stamped at creation");

    let r = apply(&reg, "v2", fence(7)).await;
    assert!(r.applied() > 0, "{r:?}");
    assert_eq!(
        epoch_tag(&reg).await,
        Some(stamp(7)),
        "a newer leader restamps"
    );

    // The leader of epoch 6 (paused, say) comes back: it must not write.
    let old = fence(6);
    let r = apply(&reg, "v3", old.clone()).await;
    assert_eq!(r.applied(), 0, "{r:?}");
    assert!(
        r.results
            .iter()
            .all(|a| matches!(&a.outcome, Outcome::Skipped(why) if why.contains(LOST_LEADERSHIP))),
        "{r:?}"
    );
    assert!(old.guard.is_lost(), "it steps down");
    let cause = old.cause().expect("the cause is recorded");
    assert!(
        cause.contains("\"fenced\" carries epoch 7") && cause.contains("epoch 6"),
        "{cause}"
    );
    let m = reg
        .registry
        .get_model("fenced")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(m.description, "v2");
    assert_eq!(epoch_tag(&reg).await, Some(stamp(7)));
}

/// History does not poison the fence: a model stamped with a higher epoch
/// by an older release (a plain number), by another engine, by another
/// election name or by an earlier incarnation of this engine is written
/// and stamped again; the leader does not step down.
#[tokio::test]
async fn another_namespaces_higher_epoch_is_restamped_without_stepping_down() {
    let reg = TempRegistry::new();
    let r = apply(&reg, "v1", fence(2)).await;
    assert_eq!(r.failed(), 0, "{r:?}");
    for (i, foreign) in [
        "48213".to_string(),
        "48213@etcd/00000000000000ff/modelsync".into(),
        "48213@postgresql/0123abcd/staging".into(),
        "48213@postgresql/ffffffff/modelsync".into(),
    ]
    .into_iter()
    .enumerate()
    {
        reg.registry
            .set_model_tag("fenced", tags::EPOCH, &foreign)
            .await
            .expect("plant the stamp");
        let leader = fence(3);
        let r = apply(&reg, &format!("v{}", i + 2), leader.clone()).await;
        assert!(r.applied() > 0 && r.failed() == 0, "{foreign}: {r:?}");
        assert!(!leader.guard.is_lost(), "{foreign}: stepped down");
        assert_eq!(epoch_tag(&reg).await, Some(stamp(3)), "{foreign}");
    }
}

#[tokio::test]
async fn a_leader_past_its_deadline_writes_nothing() {
    let reg = TempRegistry::new();
    let expired = Fence {
        epoch: 9,
        namespace: namespace(),
        guard: LeaseGuard::new(Duration::from_secs(3), modelsync::clock::wall_ms() - 10_000),
    };
    let r = apply(&reg, "v1", expired).await;
    assert_eq!(r.applied(), 0, "{r:?}");
    assert!(
        reg.registry
            .get_model("fenced")
            .await
            .expect("read")
            .is_none()
    );
}

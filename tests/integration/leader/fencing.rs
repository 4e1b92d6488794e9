//! The fence in the executor, on the embedded registry (fast and exact):
//! a leader stamps its epoch on each model it writes (with the creation of
//! a new model), refuses a model stamped by a newer leader — and marks its
//! fence lost, so it steps down — and writes nothing once its deadline
//! passed.

use std::time::Duration;

use modelsync::apply::{self, ApplyOptions, Outcome};
use modelsync::manifest::{self, SourceFile};
use modelsync::plan::PlanContext;
use modelsync::reconcile;
use modelsync::registry::lease::LOST_LEADERSHIP;
use modelsync::registry::{Fence, LeaseGuard, Registry};
use modelsync::state::tags;

use crate::support::embedded::TempRegistry;

fn fence(epoch: u64) -> Fence {
    Fence {
        epoch,
        guard: LeaseGuard::new(Duration::from_secs(30), modelsync::clock::wall_ms()),
    }
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
    assert_eq!(
        epoch_tag(&reg).await.as_deref(),
        Some("5"),
        "stamped at creation"
    );

    let r = apply(&reg, "v2", fence(7)).await;
    assert!(r.applied() > 0, "{r:?}");
    assert_eq!(
        epoch_tag(&reg).await.as_deref(),
        Some("7"),
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
    let m = reg
        .registry
        .get_model("fenced")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(m.description, "v2");
    assert_eq!(epoch_tag(&reg).await.as_deref(), Some("7"));
}

#[tokio::test]
async fn a_leader_past_its_deadline_writes_nothing() {
    let reg = TempRegistry::new();
    let expired = Fence {
        epoch: 9,
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

//! Tests of the planner, gates, staleness and renderings, over plain data.
//!
//! Builders here make desired and live states short to write; every test
//! snapshots its plan with [`show`], one JSON line per action.

mod converge;
mod copy;
mod digest;
mod gates;
mod holds;
mod logged;
mod planner;
mod prune;
mod registry_facts;
mod render;
mod stale;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::manifest::{
    DesiredExperiment, DesiredModel, DesiredState, DesiredVersion, Gate, GateTarget, Locator,
    Origin,
};
use crate::plan::{Plan, PlanContext};
use crate::state::{LiveExperiment, LiveModel, LiveRun, LiveState, LiveVersion, Stage};

/// 2026-11-20T12:00:00Z, the "now" of every test.
pub const NOW_MS: i64 = 1_795_176_000_000;

/// The registry every test plans against.
pub const REGISTRY: &str = "file:r.json";

pub fn ctx() -> PlanContext {
    PlanContext {
        now_ms: NOW_MS,
        prune: false,
        registry: REGISTRY.into(),
        break_glass: None,
    }
}

pub fn prune_ctx() -> PlanContext {
    PlanContext {
        now_ms: NOW_MS,
        prune: true,
        registry: REGISTRY.into(),
        break_glass: None,
    }
}

/// No approvers file, no approval files.
pub static NO_APPROVALS: crate::manifest::Approvals = crate::manifest::Approvals {
    approvers: None,
    files: BTreeMap::new(),
};

/// What gates are evaluated at in these tests.
pub fn env() -> crate::plan::gates::Env<'static> {
    crate::plan::gates::Env {
        now_ms: NOW_MS,
        registry: REGISTRY,
        approvals: &NO_APPROVALS,
    }
}

/// The move gates guard in these tests: `nba` into Production.
pub static PRODUCTION: crate::manifest::GateTarget =
    crate::manifest::GateTarget::Stage(crate::state::Stage::Production);

/// A declared model, built up step by step.
pub struct M(pub DesiredModel);

impl M {
    pub fn new(name: &str) -> M {
        M(DesiredModel {
            name: name.to_string(),
            origin: Origin::default(),
            description: None,
            tags: BTreeMap::new(),
            versions: BTreeMap::new(),
            stages: Default::default(),
            aliases: Default::default(),
            gates: BTreeMap::new(),
            verify: BTreeMap::new(),
        })
    }

    pub fn desc(mut self, d: &str) -> M {
        self.0.description = Some(d.to_string());
        self
    }

    pub fn tag(mut self, k: &str, v: &str) -> M {
        self.0.tags.insert(k.to_string(), v.to_string());
        self
    }

    pub fn handle(mut self, handle: &str, locator: Locator) -> M {
        self.0.versions.insert(
            handle.to_string(),
            DesiredVersion {
                origin: Origin::default(),
                locator,
                description: None,
                tags: BTreeMap::new(),
            },
        );
        self
    }

    /// A handle for an existing version number.
    pub fn number(self, handle: &str, n: u64) -> M {
        self.handle(handle, Locator::Number(n))
    }

    /// A handle for a source (with the run id a `runs:/` source implies).
    pub fn source(self, handle: &str, source: &str) -> M {
        let run_id = source
            .strip_prefix("runs:/")
            .and_then(|rest| rest.split('/').next())
            .map(str::to_string);
        self.handle(
            handle,
            Locator::Source {
                source: source.to_string(),
                run_id,
            },
        )
    }

    pub fn vdesc(mut self, handle: &str, d: &str) -> M {
        let v = self.0.versions.get_mut(handle).expect("handle declared");
        v.description = Some(d.to_string());
        self
    }

    pub fn vtag(mut self, handle: &str, k: &str, v: &str) -> M {
        let dv = self.0.versions.get_mut(handle).expect("handle declared");
        dv.tags.insert(k.to_string(), v.to_string());
        self
    }

    pub fn stage(mut self, stage: Stage, handle: &str) -> M {
        self.0.stages.insert(stage, handle.to_string());
        self
    }

    pub fn alias(mut self, alias: &str, handle: &str) -> M {
        self.0.aliases.insert(alias.to_string(), handle.to_string());
        self
    }

    pub fn gate(mut self, target: GateTarget, gate: Gate) -> M {
        self.0.gates.entry(target).or_default().push(gate);
        self
    }
}

pub fn desired(models: Vec<M>) -> DesiredState {
    DesiredState {
        registries: Default::default(),
        models: models
            .into_iter()
            .map(|m| (m.0.name.clone(), m.0))
            .collect(),
        experiments: BTreeMap::new(),
        prompts: BTreeMap::new(),
        policies: BTreeMap::new(),
        approvals: Default::default(),
        windows: Vec::new(),
        digest: "sha256:test".to_string(),
        targets: None,
        untargeted_templates: BTreeMap::new(),
    }
}

pub fn experiment(name: &str, location: Option<&str>, tags: &[(&str, &str)]) -> DesiredExperiment {
    DesiredExperiment {
        name: name.to_string(),
        origin: Origin::default(),
        artifact_location: location.map(str::to_string),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A live model, built up step by step.
pub struct L(pub LiveModel);

impl L {
    pub fn new(name: &str) -> L {
        L(LiveModel {
            name: name.to_string(),
            ..LiveModel::default()
        })
    }

    pub fn desc(mut self, d: &str) -> L {
        self.0.description = d.to_string();
        self
    }

    pub fn tag(mut self, k: &str, v: &str) -> L {
        self.0.tags.insert(k.to_string(), v.to_string());
        self
    }

    /// Version `n` in `stage`, from `source`, with run `run-<n>`.
    pub fn version(mut self, n: u64, stage: Stage, source: &str) -> L {
        self.0.versions.insert(
            n,
            LiveVersion {
                version: n,
                stage,
                source: source.to_string(),
                run_id: format!("run-{n}"),
                ..LiveVersion::default()
            },
        );
        self
    }

    pub fn run_id(mut self, n: u64, run: &str) -> L {
        self.0.versions.get_mut(&n).expect("version").run_id = run.to_string();
        self
    }

    pub fn vtag(mut self, n: u64, k: &str, v: &str) -> L {
        let ver = self.0.versions.get_mut(&n).expect("version");
        ver.tags.insert(k.to_string(), v.to_string());
        self
    }

    pub fn vdesc(mut self, n: u64, d: &str) -> L {
        self.0.versions.get_mut(&n).expect("version").description = d.to_string();
        self
    }

    pub fn alias(mut self, a: &str, n: u64) -> L {
        self.0.aliases.insert(a.to_string(), n);
        self
    }
}

pub fn live(models: Vec<L>) -> LiveState {
    LiveState {
        models: models
            .into_iter()
            .map(|m| (m.0.name.clone(), m.0))
            .collect(),
        ..LiveState::default()
    }
}

pub fn with_run(mut live: LiveState, run: &str, metrics: &[(&str, f64)]) -> LiveState {
    live.runs.insert(
        run.to_string(),
        LiveRun {
            run_id: run.to_string(),
            experiment_id: "1".to_string(),
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        },
    );
    live
}

pub fn live_experiment(name: &str, location: &str, tags: &[(&str, &str)]) -> LiveExperiment {
    LiveExperiment {
        experiment_id: "1".to_string(),
        name: name.to_string(),
        artifact_location: location.to_string(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

pub fn metric_at_least(metric: &str, lo: f64) -> Gate {
    Gate::Metric {
        dataset: None,
        metric: metric.to_string(),
        at_least: Some(lo),
        at_most: None,
    }
}

pub fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

/// RFC 3339 time `h` hours before [`NOW_MS`].
pub fn hours_ago(h: i64) -> String {
    let ms = NOW_MS - h * 3_600_000;
    let t = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).expect("positive"));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The plan, one JSON line per action, grouped per model.
pub fn show(plan: &Plan) -> String {
    if plan.models.is_empty() && plan.experiments.is_empty() {
        return "(empty)".to_string();
    }
    let mut out = String::new();
    for mp in &plan.models {
        out.push_str(&format!("{}:\n", mp.model));
        for a in &mp.actions {
            let line = serde_json::to_string(a).expect("serializes");
            out.push_str(&format!("  {line}\n"));
        }
        for e in &mp.errors {
            out.push_str(&format!("  error: {e}\n"));
        }
    }
    for ep in &plan.experiments {
        out.push_str(&format!("experiment {}:\n", ep.experiment));
        for a in &ep.actions {
            let line = serde_json::to_string(a).expect("serializes");
            out.push_str(&format!("  {line}\n"));
        }
        for w in &ep.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }
        for e in &ep.errors {
            out.push_str(&format!("  error: {e}\n"));
        }
    }
    out
}

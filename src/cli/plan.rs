//! `modelsync plan` and `modelsync apply` (from manifests or a saved plan):
//! each runs one [`reconcile::run`] pass and shows its outcome.

use std::path::Path;

use anyhow::{Context, bail};

use super::args::{ApplyArgs, PlanArgs, PlanFormat};
use super::common::{self, print};
use super::{Exit, GlobalArgs};
use crate::plan::{PLAN_FORMAT_VERSION, Plan, SavedManifest, SavedPlan, render};
use crate::reconcile::{self, Input, Mode, Outcome, Pass, Verdict};

/// `modelsync plan`.
pub async fn plan(g: &GlobalArgs, a: PlanArgs) -> anyhow::Result<Exit> {
    let clock = crate::clock::EvalClock::from_env()?;
    let input = common::read_input(&a.paths, &a.options.protect)?;
    let files = match &input {
        Input::Manifests { files, .. } => files.clone(),
        Input::Saved(_) => unreachable!("plan reads manifests"),
    };
    let pass = Pass {
        prune: a.options.prune,
        ..Pass::new(Mode::Plan, clock)
    };
    let out = reconcile::run(&common::registry_uri(g), input, &pass).await;
    if let Some(exit) = common::report_stop(&out) {
        return Ok(exit);
    }
    let plan = out
        .plan
        .as_ref()
        .expect("a pass that did not stop has a plan");
    let rendered = match a.format {
        PlanFormat::Text => render::text(plan, common::use_color(g)),
        PlanFormat::Json => render::json(plan),
        PlanFormat::Markdown => render::markdown(plan),
    };
    print(&rendered);
    if let Some(path) = &a.out {
        if plan.has_errors() {
            eprintln!(
                "error: the plan has errors; {} was not written",
                path.display()
            );
            return Ok(Exit::Error);
        }
        let saved = saved_plan(&a, &out, &files);
        write_plan(path, &saved)?;
        eprintln!(
            "Saved the plan to {}; apply it with: modelsync apply --plan {}",
            path.display(),
            path.display()
        );
    }
    Ok(match out.verdict() {
        Verdict::Changes | Verdict::Blocked if !a.detailed_exitcode => Exit::Ok,
        Verdict::Blocked => Exit::Changes,
        v => super::exit_for(v),
    })
}

fn saved_plan(a: &PlanArgs, out: &Outcome, files: &[crate::manifest::SourceFile]) -> SavedPlan {
    let desired = out.desired.as_ref().expect("valid manifests");
    let protect = common::load_options(&a.paths, &a.options.protect)
        .map(|o| o.protect)
        .unwrap_or_default();
    SavedPlan {
        format_version: PLAN_FORMAT_VERSION,
        registry: out.registry.clone(),
        manifests_digest: desired.digest.clone(),
        revision: common::revision(a.options.revision.as_deref()),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        prune: a.options.prune,
        plan: out.plan.clone().expect("planned"),
        gates: desired.gate_specs(),
        manifests: files
            .iter()
            .map(|f| SavedManifest {
                path: f.path.clone(),
                text: String::from_utf8_lossy(&f.contents).into_owned(),
            })
            .collect(),
        protect,
    }
}

/// `modelsync apply`, from manifests or (`--plan FILE`) a saved plan.
pub async fn apply(g: &GlobalArgs, a: ApplyArgs) -> anyhow::Result<Exit> {
    let clock = crate::clock::EvalClock::from_env()?;
    let (input, revision) = match &a.plan {
        Some(file) => {
            let saved = read_plan(file)?;
            let revision = saved.revision.clone();
            (Input::Saved(Box::new(saved)), revision)
        }
        None => (
            common::read_input(&a.paths, &a.options.protect)?,
            common::revision(a.options.revision.as_deref()),
        ),
    };
    let color = common::use_color(g);
    let show = move |plan: &Plan| print(&render::text(plan, color));
    let cancel = crate::shutdown::cancel_on_signal(|| {});
    let pass = Pass {
        prune: a.options.prune,
        concurrency: a.concurrency,
        revision,
        cancel,
        on_plan: Some(&show),
        ..Pass::new(Mode::Apply, clock)
    };
    let out = reconcile::run(&common::registry_uri(g), input, &pass).await;
    if let Some(exit) = common::report_stop(&out) {
        if let (Some(file), Verdict::Stale) = (&a.plan, out.verdict()) {
            eprintln!(
                "error: the registry changed since {} was made; nothing was written. Run `modelsync plan --out` again.",
                file.display()
            );
        }
        return Ok(exit);
    }
    common::report_applied(&out);
    Ok(super::exit_for(out.verdict()))
}

fn write_plan(path: &Path, saved: &SavedPlan) -> anyhow::Result<()> {
    let body = serde_json::to_string_pretty(saved)? + "\n";
    std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))
}

fn read_plan(path: &Path) -> anyhow::Result<SavedPlan> {
    let body =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let raw: serde_json::Value = serde_json::from_str(&body)
        .with_context(|| format!("{} is not a saved plan (invalid JSON)", path.display()))?;
    let version = raw.get("format_version").and_then(|v| v.as_u64());
    match version {
        Some(v) if v > u64::from(PLAN_FORMAT_VERSION) => bail!(
            "{} has plan format {v}, newer than this modelsync understands ({PLAN_FORMAT_VERSION}); upgrade modelsync",
            path.display()
        ),
        None => bail!("{} is not a saved plan (no format_version)", path.display()),
        _ => {}
    }
    serde_json::from_value(raw)
        .with_context(|| format!("{} is not a valid saved plan", path.display()))
}

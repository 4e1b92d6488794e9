//! `modelsync plan` and `modelsync apply` (from manifests or a saved plan):
//! each runs one [`reconcile::run`] pass and shows its outcome.

use std::path::Path;

use anyhow::Context;

use super::args::{ApplyArgs, PlanArgs, PlanFormat};
use super::common::{self, print};
use super::{Exit, GlobalArgs};
use crate::manifest::validate::ApproversSetting;
use crate::plan::saved::{self, Provenance};
use crate::plan::{Plan, SavedPlan, render};
use crate::reconcile::{self, Input, Mode, Outcome, Pass, Verdict};

/// `modelsync plan`.
pub async fn plan(g: &GlobalArgs, a: PlanArgs) -> anyhow::Result<Exit> {
    let clock = crate::clock::EvalClock::from_env()?;
    let (files, options) = common::read_manifests(&a.paths, &a.options.protect)?;
    let outputs = common::outputs(&a.paths)?;
    let targets = common::selector(&a.options.targets, &a.paths)?;
    let kept = (
        options.protect.clone(),
        options.roots.clone(),
        options.approvers.clone(),
        options.windows.clone(),
    );
    // A saved plan keeps the manifests; without `--out` they are not
    // copied (at 10,000 files, 5 MB more at the plan's peak).
    let saved_files = a.out.is_some().then(|| files.clone());
    let input = Input::Manifests {
        files,
        options: Box::new(options),
    };
    let pass = Pass {
        prune: a.options.prune,
        targets,
        outputs: &outputs,
        ..Pass::new(Mode::Plan, clock)
    };
    let out = reconcile::run(&common::registry_uri(g)?, input, &pass).await;
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
    print(&rendered)?;
    if plan.has_errors() {
        let then = match &a.out {
            Some(path) => format!("the plan was not saved to {}", path.display()),
            None => "it cannot be applied".to_string(),
        };
        common::report_plan_errors(plan, &then);
        return Ok(super::exit_for(out.verdict()));
    }
    if let (Some(path), Some(files)) = (&a.out, saved_files) {
        let saved = match saved_plan(&a, &out, files, kept) {
            Ok(mut s) => {
                s.outputs = outputs.clone();
                s
            }
            Err(e) => {
                crate::logging::error(&format!("{e:#}; nothing was written to {}", path.display()));
                return Ok(Exit::Error);
            }
        };
        write_plan(path, &saved)?;
        eprintln!(
            "Saved the plan to {}; apply it with: modelsync apply --plan {}{}",
            path.display(),
            path.display(),
            same_targeting(&a.options.targets)
        );
    }
    Ok(match out.verdict() {
        Verdict::Changes | Verdict::Blocked if !a.detailed_exitcode => Exit::Ok,
        Verdict::Blocked => Exit::Changes,
        v => super::exit_for(v),
    })
}

fn saved_plan(
    a: &PlanArgs,
    out: &Outcome,
    files: Vec<crate::manifest::SourceFile>,
    (protect, roots, approvers, windows): (
        Vec<String>,
        Vec<String>,
        Option<ApproversSetting>,
        Vec<crate::manifest::windows::WindowSetting>,
    ),
) -> anyhow::Result<SavedPlan> {
    let desired = out.desired.as_ref().expect("valid manifests");
    let live = out.observed.as_ref().expect("observed");
    let made = Provenance {
        registry: out.registry.clone(),
        revision: common::revision(a.options.revision.as_deref()),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        prune: a.options.prune,
        files,
        protect,
        roots,
        approvers,
        windows,
    };
    let plan = out.plan.clone().expect("planned");
    Ok(SavedPlan::new(plan, desired, live, made)?)
}

/// `modelsync apply`, from manifests or (`--plan FILE`) a saved plan.
pub async fn apply(g: &GlobalArgs, a: ApplyArgs) -> anyhow::Result<Exit> {
    if let Some(reason) = &a.reason {
        common::check_reason(reason)?;
    }
    let clock = crate::clock::EvalClock::from_env()?;
    let (input, revision, targets, outputs) = match &a.plan {
        Some(file) => {
            let saved = read_plan(file)?;
            let revision = saved.revision.clone();
            let targets = common::selector(&a.options.targets, &saved_roots(&saved))?;
            let outputs = saved.outputs.clone();
            (Input::Saved(Box::new(saved)), revision, targets, outputs)
        }
        None => {
            let (files, options) = common::read_manifests(&a.paths, &a.options.protect)?;
            let outputs = common::outputs(&a.paths)?;
            let revision = common::revision(a.options.revision.as_deref());
            let targets = common::selector(&a.options.targets, &a.paths)?;
            let options = Box::new(options);
            (
                Input::Manifests { files, options },
                revision,
                targets,
                outputs,
            )
        }
    };
    let color = common::use_color(g);
    let show = move |plan: &Plan| {
        if let Err(e) = print(&render::text(plan, color)) {
            crate::logging::error(&format!("{e:#}"));
        }
    };
    let cancel = crate::shutdown::cancel_on_signal();
    let progress = super::progress::ApplyProgress::for_terminal(g);
    let pass = Pass {
        prune: a.options.prune,
        concurrency: a.concurrency,
        revision,
        cancel,
        on_plan: Some(&show),
        progress: progress.as_ref().map(|p| p.callback()),
        targets,
        wait_verifications: !a.no_wait,
        on_verification: Some(&common::show_verification),
        outputs: &outputs,
        break_glass: a.break_glass.then(|| crate::plan::BreakGlass {
            by: common::actor(),
            reason: a.reason.clone().unwrap_or_default(),
        }),
        ..Pass::new(Mode::Apply, clock)
    };
    let out = reconcile::run(&common::registry_uri(g)?, input, &pass).await;
    drop(progress);
    if let Some(exit) = common::report_stop(&out) {
        if let (Some(file), Verdict::Stale) = (&a.plan, out.verdict()) {
            crate::logging::error(&format!(
                "the registry changed since {} was made; nothing was written. Run `modelsync plan --out` again.",
                file.display()
            ));
        }
        return Ok(exit);
    }
    common::report_applied(&out);
    Ok(super::exit_for(out.verdict()))
}

/// The targeting flags a targeted saved plan is applied with: those it
/// was made with (they select the same over its manifests).
fn same_targeting(t: &super::args::TargetArgs) -> String {
    let models = t.models.iter().map(|m| format!(" --model '{m}'"));
    let since = t
        .changed_since
        .iter()
        .map(|r| format!(" --changed-since '{r}'"));
    models.chain(since).collect()
}

/// The manifests roots a saved plan was made with (an older plan: the
/// folders of its manifests), where `--changed-since` looks for changes.
fn saved_roots(saved: &SavedPlan) -> Vec<std::path::PathBuf> {
    let mut roots: Vec<String> = saved.roots.clone();
    if roots.is_empty() {
        roots = (saved.manifests.iter())
            .map(|m| {
                m.path
                    .rsplit_once('/')
                    .map_or(".", |(dir, _)| dir)
                    .to_string()
            })
            .collect();
        roots.sort();
        roots.dedup();
    }
    roots.into_iter().map(std::path::PathBuf::from).collect()
}

/// Writes a saved plan; refused (nothing written) when it would hold the
/// value of a secret.
fn write_plan(path: &Path, saved: &SavedPlan) -> anyhow::Result<()> {
    let body = saved::to_json(saved)?;
    if let Err(leak) = crate::secret::check(&body) {
        anyhow::bail!(
            "refused to save the plan: it would hold {leak}; nothing was written to {}",
            path.display()
        );
    }
    std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))
}

fn read_plan(path: &Path) -> anyhow::Result<SavedPlan> {
    let body =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    saved::from_json(&body).with_context(|| format!("{} cannot be applied", path.display()))
}

//! `modelsync rollback`, `hold list`, `hold release`, `freeze` and
//! `unfreeze` (issue 19): a person's incident tools. Each one is an
//! executor operation (`apply::rollback`, `apply::hold`, `apply::freeze`);
//! this module asks for confirmation, says who acts (`common::actor`) and
//! prints what happened.

use anyhow::{Context, anyhow};
use serde_json::json;

use super::args::{FreezeArgs, HoldCommand, HoldReleaseArgs, OutputFormat, RollbackArgs};
use super::args::{HoldListArgs, TargetSelect};
use super::common::{self, print};
use super::{Exit, GlobalArgs};
use crate::apply::rollback::{self, RollbackError, RollbackRequest};
use crate::manifest::GateTarget;
use crate::plan::describe::target_text;
use crate::registry::Registry;
use crate::state::Stage;
use crate::state::hold::{self, Cause, Freeze};

/// The stage or alias `--stage`/`--alias` name.
fn target(t: &TargetSelect) -> anyhow::Result<GateTarget> {
    match (&t.stage, &t.alias) {
        (Some(s), _) => Stage::parse(s).map(GateTarget::Stage).ok_or_else(|| {
            anyhow!("unknown stage {s:?}: expected Staging or Production (or name an --alias)")
        }),
        (None, Some(a)) => Ok(GateTarget::Alias(a.clone())),
        (None, None) => Err(anyhow!("name a --stage or an --alias")),
    }
}

/// `modelsync rollback`.
pub async fn rollback(g: &GlobalArgs, a: RollbackArgs) -> anyhow::Result<Exit> {
    common::check_reason(&a.reason)?;
    let config = crate::source::config::Config::for_paths(&common::default_paths(&a.manifests))?;
    let windows = match crate::manifest::windows::validate(&config.windows) {
        Ok(w) => w,
        Err(diags) => {
            common::print_diagnostics(&diags);
            return Ok(Exit::Error);
        }
    };
    let req = RollbackRequest {
        model: a.model.clone(),
        target: target(&a.target)?,
        to: a.to,
        reason: a.reason.clone(),
        cause: Cause::Rollback,
        by: common::actor(),
        break_glass: a.break_glass,
        now_ms: crate::clock::EvalClock::from_env()?.now_ms(),
        windows,
    };
    let reg = common::open_registry(g, true).await?;
    let what = target_text(&req.target.key());
    // Decided once to ask (nothing written), again under the lease.
    let model = common::existing_model(&reg, &req.model).await;
    let d = match rollback::decide(&model?, &req) {
        Ok(d) => d,
        Err(e) => return Ok(failed(e)),
    };
    let from = d
        .from
        .map_or_else(|| "no version".to_string(), |f| format!("version {f}"));
    let question = format!(
        "Roll back {what} of {:?} from {from} to version {} and hold it there ({:?})?",
        req.model, d.to, req.reason
    );
    if !common::confirm(a.yes, "roll back", &question)? {
        eprintln!("Not rolled back.");
        return Ok(Exit::Error);
    }
    match rollback::run(&reg, &req).await {
        Ok(out) => {
            let moved = if out.moved {
                format!("moved from {from} to version {}", out.to)
            } else {
                format!("already at version {}", out.to)
            };
            eprintln!(
                "Rolled back {what} of {:?}: {moved}; held ({}).",
                req.model,
                out.hold.describe()
            );
            for v in &out.archived {
                eprintln!("  archived version {v}");
            }
            for w in &out.overridden {
                eprintln!("  {}: {}", w.gate, w.detail);
            }
            Ok(Exit::Ok)
        }
        Err(e) => Ok(failed(e)),
    }
}

/// Reports why a rollback did not happen; its exit code.
fn failed(e: RollbackError) -> Exit {
    crate::logging::error(&e.to_string());
    match &e {
        RollbackError::Registry(r) if r.is_unreachable() => Exit::Unreachable,
        e if e.is_blocked() => Exit::Blocked,
        _ => Exit::Error,
    }
}

/// `modelsync hold list` and `modelsync hold release`.
pub async fn run(g: &GlobalArgs, c: HoldCommand) -> anyhow::Result<Exit> {
    match c {
        HoldCommand::List(a) => list(g, &a).await,
        HoldCommand::Release(a) => release(g, &a).await,
    }
}

async fn list(g: &GlobalArgs, a: &HoldListArgs) -> anyhow::Result<Exit> {
    let reg = common::open_registry(g, false).await?;
    let context = || format!("reading {}", reg.uri());
    let holds = reg.list_holds().await.with_context(context)?;
    let freeze = reg.read_freeze().await.with_context(context)?;
    let rows = holds
        .iter()
        .flat_map(|(m, hs)| hs.iter().map(move |(t, h)| (m.as_str(), t.as_str(), h)));
    match a.format {
        OutputFormat::Json => {
            let holds: Vec<_> = rows
                .map(|(model, target, h)| {
                    json!({
                        "model": model, "target": target, "version": h.version,
                        "by": h.by, "at": h.at, "reason": h.reason, "cause": h.cause,
                    })
                })
                .collect();
            let body = json!({ "holds": holds, "freeze": freeze });
            print(&format!("{}\n", serde_json::to_string_pretty(&body)?))?;
        }
        OutputFormat::Text => {
            let mut out = String::new();
            if let Some(f) = &freeze {
                out.push_str(&format!("The registry is {}.\n", f.describe()));
            }
            for (model, target, h) in rows {
                out.push_str(&format!(
                    "{model} {}: {}\n",
                    target_text(target),
                    h.describe()
                ));
            }
            if holds.is_empty() {
                out.push_str(&format!("No holds on {}.\n", reg.uri()));
            }
            print(&out)?;
        }
    }
    Ok(Exit::Ok)
}

async fn release(g: &GlobalArgs, a: &HoldReleaseArgs) -> anyhow::Result<Exit> {
    let key = target(&a.target)?.key();
    let what = target_text(&key);
    let reg = common::open_registry(g, true).await?;
    let model = common::existing_model(&reg, &a.model).await?;
    let Some(h) = hold::holds(&model).remove(&key) else {
        eprintln!("No hold on {what} of {:?}; nothing to release.", a.model);
        return Ok(Exit::Ok);
    };
    let question = format!(
        "Release the hold on {what} of {:?} ({})? The next apply or daemon pass moves it to what the manifests declare.",
        a.model,
        h.describe()
    );
    if !common::confirm(a.yes, "release the hold", &question)? {
        eprintln!("Not released.");
        return Ok(Exit::Error);
    }
    let was = crate::apply::hold::release(&reg, &a.model, &key)
        .await
        .with_context(|| format!("releasing the hold on {what} of {:?}", a.model))?;
    match was {
        Some(h) => eprintln!(
            "Released the hold on {what} of {:?} ({}).",
            a.model,
            h.describe()
        ),
        None => eprintln!("No hold on {what} of {:?}; nothing to release.", a.model),
    }
    Ok(Exit::Ok)
}

/// `modelsync freeze --reason TEXT`.
pub async fn freeze(g: &GlobalArgs, a: FreezeArgs) -> anyhow::Result<Exit> {
    common::check_reason(&a.reason)?;
    let f = Freeze {
        by: common::actor(),
        at: crate::clock::rfc3339_seconds(crate::clock::EvalClock::from_env()?.now_ms()),
        reason: a.reason,
    };
    let reg = common::open_registry(g, true).await?;
    let was = crate::apply::freeze::freeze(&reg, &f)
        .await
        .with_context(|| format!("freezing {}", reg.uri()))?;
    if let Some(w) = was {
        eprintln!("Replaced the freeze that stood ({}).", w.describe());
    }
    eprintln!(
        "Froze {}: no apply and no daemon replica moves anything until `modelsync unfreeze` ({}).",
        reg.uri(),
        f.describe()
    );
    Ok(Exit::Ok)
}

/// `modelsync unfreeze`.
pub async fn unfreeze(g: &GlobalArgs) -> anyhow::Result<Exit> {
    let reg = common::open_registry(g, true).await?;
    let was = crate::apply::freeze::unfreeze(&reg)
        .await
        .with_context(|| format!("unfreezing {}", reg.uri()))?;
    match was {
        Some(f) => eprintln!("Unfroze {} (it was {}).", reg.uri(), f.describe()),
        None => eprintln!("{} is not frozen; nothing to do.", reg.uri()),
    }
    Ok(Exit::Ok)
}

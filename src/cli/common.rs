//! Helpers shared by the commands: registry selection, manifest loading,
//! output on stdout.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::args::{ProtectArgs, TargetArgs};
use super::{ColorChoice, Exit, GlobalArgs};
use crate::manifest::Diagnostic;
use crate::manifest::SourceFile;
use crate::manifest::targets::Selector;
use crate::manifest::validate::LoadOptions;
use crate::reconcile::{Outcome, Stop};
use crate::registry::{self, AnyRegistry, OpenOptions, RegistryUri};
use crate::source::config::Config;

/// The default registry when nothing else is configured.
pub const DEFAULT_REGISTRY: &str = "file:.modelsync/registry.json";

/// The registry URI: `--registry`, then `MODELSYNC_REGISTRY`, then
/// `MLFLOW_TRACKING_URI`, then [`DEFAULT_REGISTRY`]; with `--workspace
/// NAME` as the fragment `#workspace=NAME` (it wins over
/// `MLFLOW_WORKSPACE`, which the MLflow registry reads itself). A
/// workspace named twice must be named alike: `--workspace` (or, without
/// it, `MLFLOW_WORKSPACE`) and the URI's own `#workspace=` fragment that
/// disagree are an error, before any request. A password in the URI is
/// registered as a secret.
pub fn registry_uri(g: &GlobalArgs) -> anyhow::Result<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let uri = g
        .registry
        .clone()
        .or_else(|| env("MODELSYNC_REGISTRY"))
        .or_else(|| env("MLFLOW_TRACKING_URI"))
        .unwrap_or_else(|| DEFAULT_REGISTRY.to_string());
    crate::uri::register_password("the password in the registry URI", &uri);
    let uri = RegistryUri::new(&uri);
    let flag = g
        .workspace
        .as_deref()
        .map(str::trim)
        .filter(|w| !w.is_empty());
    if let Some(named) = uri.workspace() {
        let (other, said) = match flag {
            Some(f) => (Some(f.to_string()), "--workspace"),
            None => (
                env("MLFLOW_WORKSPACE").map(|w| w.trim().to_string()),
                "MLFLOW_WORKSPACE",
            ),
        };
        if let Some(other) = other.filter(|o| *o != named) {
            bail!(
                "{said} {other:?} and the registry URI's #workspace={named} name different \
                 workspaces; name the workspace once (or twice alike)"
            );
        }
    }
    Ok(match flag {
        Some(ws) => uri.with_workspace(ws),
        None => uri,
    }
    .as_str()
    .to_string())
}

/// Opens the configured registry.
pub async fn open_registry(g: &GlobalArgs, write: bool) -> anyhow::Result<AnyRegistry> {
    let uri = registry_uri(g)?;
    registry::open(&uri, &OpenOptions { write })
        .await
        .with_context(|| format!("opening registry {}", RegistryUri::new(&uri)))
}

/// Reads one registered model from the configured registry; an error when
/// it does not exist.
pub async fn read_model(g: &GlobalArgs, name: &str) -> anyhow::Result<crate::state::LiveModel> {
    existing_model(&open_registry(g, false).await?, name).await
}

/// Reads one registered model from `reg`; an error when it does not exist.
pub async fn existing_model(
    reg: &AnyRegistry,
    name: &str,
) -> anyhow::Result<crate::state::LiveModel> {
    use crate::registry::Registry;
    reg.get_model(name)
        .await
        .with_context(|| format!("reading {}", reg.uri()))?
        .ok_or_else(|| anyhow::anyhow!("registered model {name:?} does not exist in {}", reg.uri()))
}

/// Paths to read: the given ones, else `manifests/` if it exists, else `.`.
pub fn default_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    if !paths.is_empty() {
        paths.to_vec()
    } else if Path::new("manifests").is_dir() {
        vec![PathBuf::from("manifests")]
    } else {
        vec![PathBuf::from(".")]
    }
}

/// The manifest files under `paths`, and the options they load with (the
/// protected targets of `--protect` and `modelsync.toml`).
pub fn read_manifests(
    paths: &[PathBuf],
    protect: &ProtectArgs,
) -> anyhow::Result<(Vec<SourceFile>, LoadOptions)> {
    let paths = default_paths(paths);
    let files = crate::source::read_paths(&paths)?;
    let options = load_options(&paths, protect)?;
    Ok((files, options))
}

/// The targeted pass `--model`/`--changed-since` ask for (`None`: a full
/// one), the changes read from the git repository that holds `paths`.
pub fn selector(t: &TargetArgs, paths: &[PathBuf]) -> anyhow::Result<Option<Selector>> {
    if t.models.is_empty() && t.changed_since.is_none() {
        return Ok(None);
    }
    let changed = match &t.changed_since {
        Some(rev) => Some(crate::source::git::changed_since(
            &default_paths(paths),
            rev,
        )?),
        None => None,
    };
    Ok(Some(Selector {
        patterns: t.models.clone(),
        changed,
        named: Default::default(),
    }))
}

/// Shows why a pass stopped early, on stderr; the exit code, or `None`
/// when it did not stop.
pub fn report_stop(out: &Outcome) -> Option<Exit> {
    let stop = out.stop.as_ref()?;
    match stop {
        Stop::Invalid(diags) => print_diagnostics(diags),
        Stop::Stale(lines) => {
            for line in lines {
                crate::logging::detail("stale", line);
            }
        }
        Stop::Registry(e) => crate::logging::error(&e.to_string()),
        Stop::LostLease(_) | Stop::LostLeadership(_) => {
            report_applied(out);
            crate::logging::error(&out.error_message().unwrap_or_default());
        }
        Stop::OtherRegistry { .. } | Stop::Targets(_) | Stop::Cancelled | Stop::Leak(_) => {
            crate::logging::error(&out.error_message().unwrap_or_default());
        }
    }
    Some(super::exit_for(out.verdict()))
}

/// After an apply: the results on stdout, then on stderr what did not
/// converge, what a shutdown skipped, or why nothing was written.
pub fn report_applied(out: &Outcome) {
    if let Some(report) = &out.report
        && let Err(e) = print(&format!("\n{}", report.render_text()))
    {
        crate::logging::error(&format!("{e:#}"));
    }
    if let Some(plan) = out.plan.as_ref().filter(|p| p.has_errors()) {
        report_plan_errors(plan, "nothing was written to the registry");
    }
    if !out.pending.is_empty() {
        for line in &out.pending {
            crate::logging::detail("not converged", line);
        }
        crate::logging::error(&format!(
            "the registry does not match the manifests after apply ({} action(s) still pending)",
            out.pending.len()
        ));
    }
    for r in &out.verifications {
        let what = r.job.describe();
        let state = r.record.state;
        crate::logging::detail(state.as_str(), &format!("{what}: {}", r.record.describe()));
    }
    if out.verification_failed() {
        crate::logging::error(
            "a verification after a move failed (exit 6); see the verification lines above",
        );
    }
    if out.verdict() == crate::reconcile::Verdict::Interrupted {
        crate::logging::error(
            "interrupted: the model in flight was finished, models not started were skipped, and the lease was released; run apply again to finish",
        );
    }
    report_outputs(out);
}

/// What each output wrote (stdout: its changes and its commit or pull
/// request); a failed one on stderr, with every problem.
pub fn report_outputs(out: &Outcome) {
    for o in &out.outputs {
        let mut text = String::new();
        for c in &o.changes {
            text.push_str(&format!("output {c}\n"));
        }
        if let Some(why) = o.failed() {
            for line in why.lines() {
                crate::logging::detail("error", line);
            }
            crate::logging::error(&format!(
                "output {} was not written; the registry's changes stay applied",
                o.output
            ));
        } else {
            text.push_str(&format!("{o}\n"));
        }
        if let Err(e) = print(&text) {
            crate::logging::error(&format!("{e:#}"));
        }
    }
}

/// On stderr, at every verbosity and format: why each model, experiment
/// or prompt could not be planned, then how many, and `then`.
pub fn report_plan_errors(plan: &crate::plan::Plan, then: &str) {
    let errors = plan.errors();
    for line in &errors {
        crate::logging::detail("error", line);
    }
    crate::logging::error(&format!(
        "{} problem{} found while planning; {then}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    ));
}

/// Validation options: `--protect` plus `protect` from `modelsync.toml`;
/// the paths as the manifests roots, read from the host.
pub fn load_options(paths: &[PathBuf], protect: &ProtectArgs) -> anyhow::Result<LoadOptions> {
    let config = Config::for_paths(paths)?;
    let registries = config.registry_uris();
    let mut targets = config.protect;
    for t in &protect.protect {
        if !targets.contains(t) {
            targets.push(t.clone());
        }
    }
    Ok(LoadOptions {
        protect: targets,
        registries,
        roots: crate::source::folder::roots(paths),
        tree: crate::manifest::paths::Tree::Host,
        approvers: config.approvers,
        windows: config.windows,
    })
}

/// The outputs (`[outputs]`) of the `modelsync.toml` files beside `paths`.
pub fn outputs(paths: &[PathBuf]) -> anyhow::Result<Vec<crate::outputs::Settings>> {
    Ok(Config::for_paths(paths)?.outputs)
}

/// Reports diagnostics on stderr, one per line (JSON log lines with
/// `--log-format json`), then a count as the final error.
pub fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        crate::logging::diagnostic(d);
    }
    crate::logging::error(&format!(
        "{} problem{} found in the manifests; nothing was read from or written to the registry",
        diags.len(),
        if diags.len() == 1 { "" } else { "s" }
    ));
}

/// Writes data on stdout; a closed pipe is not an error. Refused (nothing
/// written, an error) when it holds the value of a secret.
pub fn print(s: &str) -> anyhow::Result<()> {
    crate::logging::print(s)
        .map_err(|leak| anyhow::anyhow!("refused to print: the output holds {leak}"))
}

/// Whether to colour stdout.
pub fn use_color(g: &GlobalArgs) -> bool {
    match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}

/// The revision to record: the flag, else the usual CI variables.
pub fn revision(flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string).or_else(|| {
        ["MODELSYNC_REVISION", "GITHUB_SHA", "CI_COMMIT_SHA"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    })
}

/// A verification's record as it changes, on stderr: the progress of an
/// `apply` waiting for its verifications.
pub fn show_verification(
    job: &crate::plan::verify::Job,
    record: &crate::state::verification::Record,
) {
    let last = record
        .checks
        .iter()
        .map(|c| format!("{} ({})", c.check, c.observed))
        .collect::<Vec<_>>()
        .join("; ");
    crate::logging::detail(
        "verification",
        &format!(
            "{}: round {}, {}{}",
            job.describe(),
            record.rounds,
            record.describe(),
            if last.is_empty() {
                String::new()
            } else {
                format!(" — {last}")
            }
        ),
    );
}

/// Asks `question` with `[y/N]` on a terminal; `yes` (`--yes`) answers for
/// the person. Off a terminal without `yes`: refused (an error saying to
/// pass `--yes`), so a script never acts by accident. `Ok(false)`: the
/// person said no.
pub fn confirm(yes: bool, what: &str, question: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("refusing to {what} without confirmation: stdin is not a terminal; pass --yes");
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Who this command acts as (`state::hold::actor`): `MODELSYNC_ACTOR`,
/// else `GITHUB_ACTOR`, else the OS user at this host.
pub fn actor() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    crate::state::hold::actor(|k| std::env::var(k).ok(), &host)
}

/// Refuses a `--reason` that holds the value of a secret modelsync was
/// given: it would be written to registry tags (a hold, a freeze, an audit
/// stamp) and shown in plans.
pub fn check_reason(reason: &str) -> anyhow::Result<()> {
    if let Err(leak) = crate::secret::check(reason) {
        bail!("refused: --reason holds {leak}; nothing was written");
    }
    Ok(())
}

//! Running verifications after a move (issue 19), the shell half: each
//! round probes the HTTP checks (`probe`), reads the version's logged
//! model for the metric checks (`registry::evidence`), lets
//! `plan::verify::step` judge the round, and writes the record on the
//! version as `modelsync.verified.<target>` — so the state lives in the
//! registry, where every replica, `get`, `history`, the status page and a
//! restarted daemon read it. The only writes are that tag's (an executor
//! write, like the audit tags of a move). Rounds run on the wall clock.

use std::time::Duration;

use crate::clock;
use crate::manifest::verify::{Check, OnFailure};
use crate::plan::verify::{self as core, Job};
use crate::probe::{Prober, Request};
use crate::registry::{AnyRegistry, Registry};
use crate::state::hold::{Cause, Hold};
use crate::state::verification::{CheckRecord, Record};

use super::CancelFlag;

/// Who the holds and rollbacks of a failed verification name.
pub const ACTOR: &str = "modelsync (verification)";

/// Told each record as it changes (a progress line, a log line).
pub type OnRecord<'a> = &'a (dyn Fn(&Job, &Record) + Send + Sync);

/// A verification and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub job: Job,
    pub record: Record,
}

/// Starts `jobs`: writes a `verifying` record (now, `revision`) on each
/// moved version. A record that cannot be written is logged; the
/// verification still runs (its next write may land).
pub async fn start<R: Registry>(reg: &R, jobs: Vec<Job>, revision: Option<&str>) -> Vec<Running> {
    let mut out = Vec::new();
    for job in jobs {
        let record = Record::start(
            clock::rfc3339_seconds(clock::wall_ms()),
            revision.map(str::to_string),
        );
        write(reg, &job, &record).await;
        tracing::info!(model = %job.model, version = job.version, target = %job.target, "verification started");
        out.push(Running { job, record });
    }
    out
}

/// Runs `running` to their end (verified or failed), round by round,
/// writing each new record; returns them finished, or as far as they got
/// when `cancel` is set (they stay `verifying` in the registry, for the
/// next run to resume).
pub async fn run(
    reg: &AnyRegistry,
    mut running: Vec<Running>,
    cancel: Option<&CancelFlag>,
    on_record: Option<OnRecord<'_>>,
) -> Vec<Running> {
    let prober = match Prober::new() {
        Ok(p) => p,
        Err(why) => {
            tracing::error!("verifications cannot run: {why}");
            return running;
        }
    };
    while !cancel.is_some_and(CancelFlag::is_cancelled) {
        let Some(due) = rounds_due(reg, &prober, &mut running, on_record).await else {
            break;
        };
        nap_until(due).await;
    }
    running
}

/// Runs the rounds that are due of the verifications not yet finished;
/// `None` when all are finished, else when the next round is due (ms,
/// wall clock).
pub async fn rounds_due(
    reg: &AnyRegistry,
    prober: &Prober,
    running: &mut [Running],
    on_record: Option<OnRecord<'_>>,
) -> Option<i64> {
    let now = clock::wall_ms();
    for r in running.iter_mut().filter(|r| !r.record.state.is_final()) {
        if core::next_round_ms(&r.record, &r.job.spec) > now {
            continue;
        }
        let observed = round(reg, prober, r).await;
        let mut after = core::step(&r.record, &r.job.spec, observed, clock::wall_ms());
        if after == r.record {
            continue;
        }
        if after.state == crate::state::verification::State::Failed {
            after.then = Some(on_failure(reg, &r.job, &after).await);
        }
        write(reg, &r.job, &after).await;
        if let Some(f) = on_record {
            f(&r.job, &after);
        }
        if after.state.is_final() {
            tracing::info!(
                model = %r.job.model, version = r.job.version, target = %r.job.target,
                "verification {}", after.describe()
            );
        }
        r.record = after;
    }
    running
        .iter()
        .filter(|r| !r.record.state.is_final())
        .map(|r| core::next_round_ms(&r.record, &r.job.spec))
        .min()
}

/// Sleeps until `due` (ms, wall clock), in naps of at most half a second
/// so that a cancel is seen soon.
pub async fn nap_until(due: i64) {
    let wait = u64::try_from(due.saturating_sub(clock::wall_ms())).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait.clamp(10, 500))).await;
}

/// What a failed verification does to its target (`onFailure`): roll it
/// back to the version that held it before and hold it there
/// (`apply::rollback`, under the applier lease), or hold it at the failed
/// version (`apply::hold`). Says what was done, or why not.
async fn on_failure(reg: &AnyRegistry, job: &Job, record: &Record) -> String {
    let why = record.reason.as_deref().unwrap_or("failed");
    let reason = format!("verification of version {} failed: {why}", job.version);
    let now_ms = clock::wall_ms();
    let done = match job.spec.on_failure {
        OnFailure::Rollback => {
            let req = super::rollback::RollbackRequest {
                model: job.model.clone(),
                target: job.target.clone(),
                to: None,
                reason,
                cause: Cause::Rollback,
                by: ACTOR.to_string(),
                break_glass: false,
                now_ms,
                // The daemon's own rollback of what it just moved: no
                // window stops it (nor a freeze).
                windows: Vec::new(),
            };
            match super::rollback::run(reg, &req).await {
                Ok(o) => crate::state::verification::rolled_back_then(o.to),
                Err(e) => format!("not rolled back: {e}"),
            }
        }
        OnFailure::Hold => {
            let hold = Hold {
                version: job.version,
                by: ACTOR.to_string(),
                at: clock::rfc3339_seconds(now_ms),
                reason,
                cause: Cause::VerificationFailed,
                extra: Default::default(),
            };
            match super::hold::place(reg, &job.model, &job.target.key(), &hold).await {
                Ok(()) => crate::state::verification::held_then(job.version),
                Err(e) => format!("not held: {e}"),
            }
        }
    };
    tracing::warn!(model = %job.model, version = job.version, target = %job.target, "verification failed: {done}");
    done
}

/// One round of `r`'s checks, in the order declared.
async fn round<R: Registry>(reg: &R, prober: &Prober, r: &Running) -> Vec<CheckRecord> {
    let job = &r.job;
    let since_ms = clock::parse_rfc3339(&r.record.since).unwrap_or(0);
    let has_metrics = job
        .spec
        .checks
        .iter()
        .any(|c| matches!(c, Check::Metric { .. }));
    let evidence = if has_metrics {
        Some(read_logged_model(reg, job).await)
    } else {
        None
    };
    let mut out = Vec::new();
    for check in &job.spec.checks {
        out.push(match check {
            Check::Http(h) => {
                let url = core::url_for(h, job);
                let answer = prober
                    .send(Request {
                        url: &url,
                        method: &h.method,
                        body: h.body.as_deref(),
                        headers: &h.headers,
                    })
                    .await;
                match &answer {
                    Ok(a) => core::judge_http(h, job, Ok(&a.view())),
                    Err(why) => core::judge_http(h, job, Err(why)),
                }
            }
            Check::Metric { .. } => match evidence.as_ref().expect("read above") {
                Ok(lm) => core::judge_metric(check, lm.as_ref(), since_ms),
                Err(why) => CheckRecord {
                    check: check.describe(),
                    ok: false,
                    observed: format!("cannot read the version's metrics: {why}"),
                },
            },
        });
    }
    out
}

/// The version's logged model as it is now (its run read to find its
/// experiment), `None` when it has none.
async fn read_logged_model<R: Registry>(
    reg: &R,
    job: &Job,
) -> Result<Option<crate::state::LiveLoggedModel>, String> {
    let Some(model_id) = job.model_id.clone() else {
        return Ok(None);
    };
    let runs: Vec<String> = job.run_id.iter().cloned().collect();
    let live =
        crate::registry::evidence::read_evidence(reg, &runs, std::slice::from_ref(&model_id))
            .await
            .map_err(|e| e.to_string())?;
    Ok(live.logged_models.get(&model_id).cloned())
}

async fn write<R: Registry>(reg: &R, job: &Job, record: &Record) {
    // Flushed at once: the embedded registry keeps writes in memory until
    // then, and a verification outlives the pass that flushed its moves.
    let written = match reg
        .set_version_tag(&job.model, job.version, &job.tag_key(), &record.render())
        .await
    {
        Ok(()) => reg.flush().await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::warn!(
            model = %job.model, version = job.version, target = %job.target, error = %e,
            "could not record the verification"
        );
    }
}

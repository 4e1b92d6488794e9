//! Performing a copy (`Action::CopyVersion`): the version `from:` named,
//! from the source registry into this one, exactly once.
//!
//! Steps, each safe to repeat, so a rerun after a timeout or a crash
//! resumes where the last one stopped:
//!
//! 1. a version of the model already carrying the lineage tag is the copy
//!    (nothing more to do);
//! 2. the copy's experiment (declared, or `modelsync-copies`), and in it the
//!    run tagged with the lineage — found again, or created;
//! 3. on MLflow 3 the logged model the run records (`modelsync.copy.model-id`),
//!    or a new one; on MLflow 2 the run's `model/` artifact folder;
//! 4. unless the run says `modelsync.copy.complete`: every file streamed
//!    from the source's store to the target's, its sha256 taken on the way
//!    and checked against the one the plan recorded (the bytes that were
//!    planned, and digested) and against the bytes read back from the
//!    target; then the
//!    source run's metrics and params, the logged model finalized, the run
//!    finished and marked complete;
//! 5. only then the version is registered, from the target's own store
//!    (`models:/<id>` or the run's artifact URI), tagged with its lineage.
//!
//! A copy that fails part-way leaves an unfinished run that is never
//! registered; the next apply resumes it.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tracing::{debug, info};

use super::ApplyOptions;
use crate::registry::copy::{CopyRun, CopyTarget, Store, hash_stream};
use crate::registry::{NewVersion, Registry, RegistryError};
use crate::state::{CopySource, LiveVersion, TreeFile, tags};

/// How often one file's transfer is tried before the copy fails.
const FILE_ATTEMPTS: u32 = 3;

/// What to copy, from the plan.
pub(super) struct CopyJob<'a> {
    pub model: &'a str,
    pub from: &'a CopySource,
    pub experiment: &'a str,
    pub description: Option<&'a String>,
    pub tags: &'a std::collections::BTreeMap<String, String>,
}

/// Copies `job.from` into `reg` and returns the registered version.
pub(super) async fn copy_version<R: Registry>(
    reg: &R,
    opts: &ApplyOptions,
    job: &CopyJob<'_>,
) -> Result<LiveVersion, RegistryError> {
    let from = job.from;
    let lineage = from.lineage();
    if let Some(v) = registered(reg, job.model, from).await? {
        debug!(
            model = job.model,
            version = v.version,
            "copy already registered"
        );
        return Ok(v);
    }
    let target = reg.copy_target().ok_or_else(|| {
        RegistryError::Invalid(format!(
            "copying from registry {} needs an MLflow registry to copy into ({} holds no artifacts)",
            from.registry,
            reg.uri()
        ))
    })?;
    lease(opts)?;
    let exp = target.ensure_experiment(job.experiment).await?;
    let run = match target.find_run(&exp, &lineage).await? {
        Some(run) => {
            info!(model = job.model, run = %run.run_id, "resuming an unfinished copy");
            run
        }
        None => {
            lease(opts)?;
            let name = format!("copy-{}-{}-v{}", from.registry, from.model, from.version);
            target
                .create_run(&exp, &lineage, &name, opts.now_ms)
                .await?
        }
    };
    let (model_id, dest) = destination(&target, &exp, job.model, &run, &lineage).await?;
    if run.tags.get(tags::COPY_COMPLETE).map(String::as_str) != Some("true") {
        let whose_src = format!("registry {} ({})", from.registry, from.uri);
        let whose_dst = format!("this registry ({})", target.display());
        let src = opts
            .sources
            .store(&from.registry, &from.artifact_uri, &whose_src)?;
        let dst = target.store(&dest, &whose_dst)?;
        for file in &from.files {
            lease(opts)?;
            transfer(&src, &dst, file).await?;
        }
        lease(opts)?;
        target
            .log_evidence(&run.run_id, from, model_id.as_deref(), opts.now_ms)
            .await?;
        if let Some(id) = &model_id {
            target.finalize_logged_model(id).await?;
        }
        target.finish_run(&run.run_id, opts.now_ms).await?;
        target
            .set_run_tag(&run.run_id, tags::COPY_COMPLETE, "true")
            .await?;
    }
    lease(opts)?;
    let new = NewVersion {
        declared_source: format!("copy:{lineage}"),
        source: match &model_id {
            Some(id) => format!("models:/{id}"),
            None => dest,
        },
        run_id: Some(run.run_id.clone()),
        model_id,
        description: job.description.cloned(),
        tags: job.tags.clone(),
    };
    reg.create_version(job.model, &new).await
}

/// `Err` once the applier lease is lost.
fn lease(opts: &ApplyOptions) -> Result<(), RegistryError> {
    opts.may_write()
        .map_err(|why| RegistryError::Other(format!("copy stopped: {why}")))
}

/// The version of `model` already carrying `from`'s lineage, if any.
async fn registered<R: Registry>(
    reg: &R,
    model: &str,
    from: &CopySource,
) -> Result<Option<LiveVersion>, RegistryError> {
    Ok(reg.get_model(model).await?.and_then(|m| {
        m.versions.into_values().find(|v| {
            v.tags
                .get(tags::COPY_LINEAGE)
                .is_some_and(|l| from.is_lineage(l))
        })
    }))
}

/// Where the files go: the logged model the run records or a new one
/// (MLflow 3), else the run's `model` folder (MLflow 2).
async fn destination(
    target: &CopyTarget<'_>,
    exp: &str,
    model: &str,
    run: &CopyRun,
    lineage: &str,
) -> Result<(Option<String>, String), RegistryError> {
    if let Some(id) = run.tags.get(tags::COPY_MODEL_ID) {
        return Ok((Some(id.clone()), target.logged_model_location(id).await?));
    }
    match target
        .create_logged_model(exp, model, &run.run_id, lineage)
        .await?
    {
        Some((id, location)) => Ok((Some(id), location)),
        None => Ok((
            None,
            format!("{}/model", run.artifact_uri.trim_end_matches('/')),
        )),
    }
}

/// Streams one file from `src` to `dst` and checks it: its sha256 as read
/// from the source must be the one the plan recorded, and that of the
/// bytes read back from the target. A transfer that breaks is tried again
/// (the upload replaces the file); a mismatch is refused at once.
async fn transfer(src: &Store<'_>, dst: &Store<'_>, file: &TreeFile) -> Result<(), RegistryError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match upload(src, dst, file).await {
            Ok(sent) => {
                if !file.sha256.is_empty() && sent.0 != file.sha256 {
                    return Err(RegistryError::Other(format!(
                        "{} changed since the plan: sha256 {} was planned, {} was read; \
                         the copy is not registered (plan again)",
                        src.describe(&file.path),
                        file.sha256,
                        sent.0
                    )));
                }
                let stored = hash_stream(dst.get(&file.path).await?).await?;
                if stored.0 != sent.0 || stored.1 != file.size {
                    return Err(RegistryError::Other(format!(
                        "checksum mismatch: {} holds sha256 {} ({} bytes) after the upload, but \
                         {} read as sha256 {} ({} bytes); the copy is not registered",
                        dst.describe(&file.path),
                        stored.0,
                        stored.1,
                        src.describe(&file.path),
                        sent.0,
                        sent.1
                    )));
                }
                debug!(path = %file.path, sha256 = %sent.0, "copied and verified");
                return Ok(());
            }
            Err(e) if attempt < FILE_ATTEMPTS && retryable(&e) => {
                debug!(path = %file.path, attempt, error = %e, "file transfer failed; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn retryable(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Unreachable(_) | RegistryError::Other(_))
}

/// Uploads one file, hashing the bytes as they pass: (sha256, size) sent.
async fn upload(
    src: &Store<'_>,
    dst: &Store<'_>,
    file: &TreeFile,
) -> Result<(String, u64), RegistryError> {
    let hasher = Arc::new(Mutex::new((Sha256::new(), 0u64)));
    let h = hasher.clone();
    let body = src
        .get(&file.path)
        .await?
        .map(move |chunk| {
            if let Ok(c) = &chunk {
                let mut g = h.lock().expect("hasher");
                g.0.update(c);
                g.1 += c.len() as u64;
            }
            chunk
        })
        .boxed();
    dst.put(&file.path, body, file.size).await?;
    let (digest, n) = std::mem::take(&mut *hasher.lock().expect("hasher"));
    if n != file.size {
        return Err(RegistryError::Other(format!(
            "{} gave {n} bytes, its listing said {}",
            src.describe(&file.path),
            file.size
        )));
    }
    Ok((format!("{:x}", digest.finalize()), n))
}

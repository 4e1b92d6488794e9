//! The version a declared source already is ([`registered`], the one rule
//! of `state::source` over one read of the model's versions), and the
//! duplicate backstop: one version per declared source (the
//! `modelsync.source` tag), whatever the network did to a create.
//!
//! `model-versions/create` is not idempotent. Two things can leave two
//! versions with one declared source: two appliers racing past the lease
//! (each then keeps the lowest and deletes its own, [`keep_first_registered`],
//! [`remove_duplicate`]), and a create whose answer was lost and which was
//! sent again after a re-read found nothing — while the first attempt was
//! still in transit or still being processed, slower than the client's
//! timeout. That first attempt can land after the re-send: a *late twin*.
//! [`settle`] watches for it before the create returns (so before any move
//! of the version): for the settle time after the re-send's answer, or
//! until every abandoned attempt has shown up, the versions with that
//! source are re-read and all but the lowest deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::json;

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::read::{search_versions, versions_of};
use super::wire::{Empty, filter_literal};
use crate::registry::{NewVersion, Result};
use crate::state::{LiveVersion, Stage, tags};

/// One read of `model`'s versions; every version in `registered` (declared
/// source -> version this run created) whose source a lower version also
/// holds is a duplicate from a concurrent applier: deleted, and the lower
/// one answered.
pub async fn keep_first_registered(
    reg: &MlflowRegistry,
    model: &str,
    registered: &BTreeMap<String, u64>,
) -> Result<BTreeMap<String, u64>> {
    let mut first: BTreeMap<String, u64> = BTreeMap::new();
    for v in versions_of(reg, model).await? {
        let v = v.into_live()?;
        if let Some(declared) = v.tags.get(tags::SOURCE) {
            let lowest = first.entry(declared.clone()).or_insert(v.version);
            *lowest = (*lowest).min(v.version);
        }
    }
    let mut out = BTreeMap::new();
    for (declared, created) in registered {
        let kept = match first.get(declared) {
            Some(lower) if lower < created => {
                delete(reg, model, *created, *lower, Why::Concurrent).await;
                *lower
            }
            _ => *created,
        };
        out.insert(declared.clone(), kept);
    }
    Ok(out)
}

/// The backstop against two appliers racing past the lease: right after a
/// create, if a lower version with the same declared source exists, the one
/// this run created is a duplicate: delete it (needs MANAGE; otherwise say
/// so) and use the lower one.
pub async fn remove_duplicate(
    reg: &MlflowRegistry,
    model: &str,
    declared: &str,
    created: LiveVersion,
) -> Result<LiveVersion> {
    let Some(first) = all_by_declared(reg, model, declared)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(created);
    };
    if first.version >= created.version {
        return Ok(created);
    }
    delete(reg, model, created.version, first.version, Why::Concurrent).await;
    Ok(first)
}

/// After a create that was sent again `abandoned` times (each earlier
/// attempt's answer lost, a re-read finding nothing): waits up to `window`
/// for those attempts to land as late twins, keeping the lowest version
/// with the declared source and deleting every other one still in stage
/// None (a twin holding a stage was moved by someone: left, and said so).
/// Returns the version kept.
pub async fn settle(
    reg: &MlflowRegistry,
    model: &str,
    declared: &str,
    created: LiveVersion,
    abandoned: u32,
    window: Duration,
) -> Result<LiveVersion> {
    let start = Instant::now();
    let mut poll = Duration::from_millis(200);
    let mut twins: BTreeSet<u64> = BTreeSet::new();
    let mut kept = created;
    tracing::info!(
        model,
        version = kept.version,
        window_ms = window.as_millis() as u64,
        "a create whose answer was lost was sent again; watching for the first attempt landing late"
    );
    loop {
        let all = all_by_declared(reg, model, declared).await?;
        if let Some(lowest) = all.first() {
            kept = lowest.clone();
        }
        for v in all.iter().skip(1) {
            if twins.insert(v.version) {
                if v.stage == Stage::None {
                    delete(reg, model, v.version, kept.version, Why::Late).await;
                } else {
                    tracing::warn!(model, version = v.version, kept = kept.version, stage = %v.stage,
                        "a late duplicate of this source was moved before it could be removed; left in place");
                }
            }
        }
        let left = window.saturating_sub(start.elapsed());
        if twins.len() >= abandoned as usize || left.is_zero() {
            return Ok(kept);
        }
        tokio::time::sleep(poll.min(left)).await;
        poll = (poll * 2).min(Duration::from_secs(2));
    }
}

/// Why a duplicate is deleted.
#[derive(Clone, Copy)]
enum Why {
    /// Another applier registered the source too.
    Concurrent,
    /// An earlier attempt of this run's create landed after the re-send.
    Late,
}

/// Deletes `duplicate` (needs MANAGE; otherwise says so and leaves it).
async fn delete(reg: &MlflowRegistry, model: &str, duplicate: u64, kept: u64, why: Why) {
    let what = match why {
        Why::Concurrent => {
            "another applier registered this source concurrently; removing the duplicate this run created"
        }
        Why::Late => {
            "an earlier attempt of this create landed after it was sent again; removing the duplicate"
        }
    };
    tracing::warn!(model, duplicate, kept, "{what}");
    let body = json!({ "name": model, "version": duplicate.to_string() });
    if let Err(e) = reg
        .client
        .call::<Empty>(&ep::DELETE_VERSION, Payload::Json(&body))
        .await
    {
        tracing::warn!(model, version = duplicate, error = %e.into_registry(), "could not remove the duplicate version");
    }
}

/// The version of `model` that `new`'s declared source already is, if
/// any: one read of the model's versions, judged by the one rule
/// ([`crate::state::DeclaredSource`]: the `modelsync.source` tag first,
/// else the stored source).
pub async fn registered(
    reg: &MlflowRegistry,
    model: &str,
    new: &NewVersion,
) -> Result<Option<LiveVersion>> {
    let versions = versions_of(reg, model)
        .await?
        .into_iter()
        .filter(|v| v.name == model)
        .map(|v| v.into_live().map_err(Into::into))
        .collect::<Result<Vec<_>>>()?;
    Ok(new.declared().find_in(&versions).cloned())
}

/// Every version of `model` tagged with the declared source `declared`
/// (this run's creates and their twins), lowest first.
async fn all_by_declared(
    reg: &MlflowRegistry,
    model: &str,
    declared: &str,
) -> Result<Vec<LiveVersion>> {
    let found = match (filter_literal(model), filter_literal(declared)) {
        (Some(m), Some(d)) => {
            let filter = format!("name={m} AND tags.`{}`={d}", tags::SOURCE);
            search_versions(reg, Some(&filter)).await?
        }
        // Not expressible as a filter: read the model's versions instead.
        _ => versions_of(reg, model).await?,
    };
    let mut matching: Vec<LiveVersion> = found
        .into_iter()
        .filter(|v| v.name == model)
        .map(|v| v.into_live().map_err(Into::into))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|v| v.tags.get(tags::SOURCE).map(String::as_str) == Some(declared))
        .collect();
    matching.sort_by_key(|v| v.version);
    Ok(matching)
}

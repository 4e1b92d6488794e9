//! `modelsync history`: the promotions recorded by the audit tags.

use serde::Serialize;

use super::args::{HistoryArgs, OutputFormat};
use super::common::{self, print};
use super::{Exit, GlobalArgs};
use crate::state::LiveModel;
use crate::state::tags;

/// One promotion reconstructed from tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Promotion {
    /// RFC 3339 time of the move.
    pub at: String,
    /// Stage name or alias.
    pub target: String,
    pub version: u64,
    /// The version it replaced, when recorded.
    pub previous: Option<u64>,
    /// The revision recorded on the version (its latest move).
    pub revision: Option<String>,
}

pub async fn run(g: &GlobalArgs, a: HistoryArgs) -> anyhow::Result<Exit> {
    let model = common::read_model(g, &a.model).await?;
    let events = promotions(&model);
    match a.format {
        OutputFormat::Json => print(&format!("{}\n", serde_json::to_string_pretty(&events)?)),
        OutputFormat::Text if events.is_empty() => print(&format!(
            "No promotions of {} recorded by modelsync.\n",
            model.name
        )),
        OutputFormat::Text => {
            for e in &events {
                let mut line = format!("{}  {:<12} version {}", e.at, e.target, e.version);
                if let Some(p) = e.previous {
                    line.push_str(&format!(" (replaced version {p})"));
                }
                if let Some(r) = &e.revision {
                    line.push_str(&format!("  revision {r}"));
                }
                print(&format!("{line}\n"));
            }
        }
    }
    Ok(Exit::Ok)
}

/// Every promotion the tags record, newest first.
pub fn promotions(model: &LiveModel) -> Vec<Promotion> {
    let mut events = Vec::new();
    for v in model.versions.values() {
        for (key, value) in &v.tags {
            let Some(target) = key.strip_prefix(tags::PROMOTED_AT_PREFIX) else {
                continue;
            };
            // One tag per move; older releases wrote `previous` and
            // `revision` as tags of their own.
            let stamp = tags::Stamp::parse(value);
            let previous = stamp.previous.or_else(|| {
                v.tags
                    .get(&format!("{}{target}", tags::PREVIOUS_PREFIX))
                    .and_then(|p| p.parse().ok())
            });
            events.push(Promotion {
                at: stamp.at,
                target: target.to_string(),
                version: v.version,
                previous,
                revision: stamp
                    .revision
                    .or_else(|| v.tags.get(tags::REVISION).cloned()),
            });
        }
    }
    events.sort_by(|a, b| {
        b.at.cmp(&a.at)
            .then(b.version.cmp(&a.version))
            .then(a.target.cmp(&b.target))
    });
    events
}

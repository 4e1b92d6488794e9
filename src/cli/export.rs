//! `modelsync export`: live registry -> manifests, or -> a snapshot file.

use std::collections::BTreeSet;

use anyhow::Context;

use super::args::ExportArgs;
use super::common::{self, print};
use super::{Exit, GlobalArgs};
use crate::registry::{self, Registry, Scope, SnapshotRequest};

pub async fn run(g: &GlobalArgs, a: ExportArgs) -> anyhow::Result<Exit> {
    let reg = common::open_registry(g, false).await?;
    let live = if !a.paths.is_empty() {
        let paths = common::default_paths(&a.paths);
        let files = crate::source::read_paths(&paths)?;
        // As plan reads them: modelsync.toml's registries and approvers too.
        let no_flags = super::args::ProtectArgs {
            protect: Vec::new(),
        };
        let options = common::load_options(&paths, &no_flags)?;
        let desired = match crate::reconcile::load(&files, &options) {
            Ok(d) => d,
            Err(diags) => {
                common::print_diagnostics(&diags);
                return Ok(Exit::Error);
            }
        };
        crate::reconcile::observe(&reg, &Default::default(), &desired).await
    } else {
        let models = if a.models.is_empty() {
            Scope::All
        } else {
            Scope::Named(a.models.iter().cloned().collect())
        };
        let req = SnapshotRequest {
            models,
            experiments: BTreeSet::new(),
        };
        // Everything (no --model, no --snapshot): the prompts too, where
        // the server has a prompt registry.
        let all = a.models.is_empty() && a.snapshot.is_none();
        let prompts = async {
            if all && reg.capabilities().await?.prompts {
                reg.list_prompts().await
            } else {
                Ok(Default::default())
            }
        };
        futures_util::future::try_join(reg.snapshot(&req), prompts)
            .await
            .map(|(mut live, prompts)| {
                live.prompts = prompts;
                live
            })
    }
    .with_context(|| format!("reading {}", reg.uri()))?;
    let mut live = live;
    if let Some(lease) = reg.lease_model_name() {
        live.models.remove(lease);
    }
    for name in &a.models {
        if !live.models.contains_key(name) {
            anyhow::bail!("registered model {name:?} does not exist in {}", reg.uri());
        }
    }
    match &a.snapshot {
        Some(path) => {
            registry::write_snapshot(path, &live)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "Wrote {} model(s) to {}; plan offline with --registry file:{}",
                live.models.len(),
                path.display(),
                path.display()
            );
        }
        None => print(&crate::manifest::export::render(&live))?,
    }
    Ok(Exit::Ok)
}

//! `modelsync resolve`: a version (behind an alias, the highest in a
//! stage, or by number) resolved to the bytes a model server would fetch:
//! its run, logged model, a fetchable URI and the digest of its files
//! (`state::digest`). Refused: a location only MLflow can follow
//! (`state::artifacts::serving_uri` says why and what to configure), and
//! bytes that no longer match the digest modelsync recorded on the version.

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use super::args::{OutputFormat, ResolveArgs};
use super::common::{self, print};
use super::{Exit, GlobalArgs};
use crate::registry::Registry;
use crate::state::LiveVersion;
use crate::state::artifacts::serving_uri;
use crate::state::digest::{Pin, check_pin};

/// What `resolve` prints.
struct Resolved<'a> {
    model: &'a str,
    version: &'a LiveVersion,
    uri: String,
    digest: String,
}

pub async fn run(g: &GlobalArgs, a: ResolveArgs) -> anyhow::Result<Exit> {
    let (name, alias) = split_target(&a.target);
    if alias.is_some() && (a.stage.is_some() || a.version.is_some()) {
        bail!(
            "name one version: {} together with --stage or --version",
            a.target
        );
    }
    let reg = common::open_registry(g, false).await?;
    let model = common::existing_model(&reg, name).await?;
    let version = super::get::select(&model, a.stage.as_deref(), alias, a.version)?;
    let n = version.version;
    let found = reg
        .resolve_version(name, version)
        .await
        .with_context(|| format!("reading the bytes of version {n} of {name:?}"))?;
    let uri = serving_uri(&found.location).map_err(|why| {
        anyhow!("version {n} of {name:?} cannot be handed to a model server: {why}")
    })?;
    if let Pin::Differs(why) = check_pin(&version.tags, &found.tree) {
        bail!(
            "version {n} of {name:?}: {why}; a model server would fetch other bytes than the ones modelsync pinned"
        );
    }
    let out = Resolved {
        model: name,
        version,
        uri,
        digest: found.tree.digest,
    };
    let text = match a.format {
        OutputFormat::Json => format!("{}\n", serde_json::to_string_pretty(&to_json(&out))?),
        OutputFormat::Text => to_text(&out),
    };
    print(&text)?;
    Ok(Exit::Ok)
}

/// `MODEL@ALIAS` -> (model, alias); an alias never holds `@`, so the
/// last one splits.
fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.rsplit_once('@') {
        Some((model, alias)) if !model.is_empty() => (model, Some(alias)),
        _ => (target, None),
    }
}

fn non_empty(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { json!(s) }
}

/// The JSON document: `model`, `version` (a string, as MLflow writes it),
/// `run`, `modelId` (null when absent), `uri`, `digest`.
fn to_json(r: &Resolved<'_>) -> Value {
    json!({
        "model": r.model,
        "version": r.version.version.to_string(),
        "run": non_empty(&r.version.run_id),
        "modelId": non_empty(&r.version.model_id),
        "uri": r.uri,
        "digest": r.digest,
    })
}

fn to_text(r: &Resolved<'_>) -> String {
    let v = r.version;
    let or_none = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{} version {}\n  run:      {}\n  model id: {}\n  uri:      {}\n  digest:   {}\n",
        r.model,
        v.version,
        or_none(&v.run_id),
        or_none(&v.model_id),
        r.uri,
        r.digest
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_at_the_last_at_sign() {
        assert_eq!(split_target("fraud@champion"), ("fraud", Some("champion")));
        assert_eq!(split_target("a@b@c"), ("a@b", Some("c")));
        assert_eq!(split_target("fraud"), ("fraud", None));
        assert_eq!(split_target("@x"), ("@x", None));
    }

    #[test]
    fn the_json_has_exactly_the_documented_fields() {
        let v = LiveVersion {
            version: 7,
            run_id: "r1".into(),
            ..LiveVersion::default()
        };
        let r = Resolved {
            model: "fraud",
            version: &v,
            uri: "s3://b/k".into(),
            digest: "sha256:00".into(),
        };
        assert_eq!(
            to_json(&r),
            json!({"model": "fraud", "version": "7", "run": "r1", "modelId": null,
                   "uri": "s3://b/k", "digest": "sha256:00"})
        );
        assert_eq!(
            to_text(&r),
            "fraud version 7\n  run:      r1\n  model id: -\n  uri:      s3://b/k\n  digest:   sha256:00\n"
        );
    }
}

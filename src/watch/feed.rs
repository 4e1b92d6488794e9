//! `GET /feeds/MODEL/ALIAS.json`: what stands behind an alias, for other
//! tools to follow — the version, a URI a model server can fetch, the
//! digest modelsync pinned at the move (`modelsync.digest`) and when the
//! alias moved there (`modelsync.promoted-at.ALIAS`).
//!
//! The document is shaped for Renovate's custom datasource
//! (`customDatasources`, format `json`) without a transform: a `releases`
//! array of `{version, digest, releaseTimestamp}`, one entry for the
//! version the alias points at; the same fields stand at the top for
//! everyone else. Fields with no value are left out of a release (Renovate
//! accepts a missing field, not a null one).
//!
//! Feeds are derived (pure) after every pass from what it read (the models
//! and the locations of their alias holders, `reconcile::Outcome`); a GET
//! reads them from memory and never asks the registry. Model and alias
//! names come percent-decoded from the path; the JSON escapes them.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::App;
use crate::state::artifacts::{Locations, serving_uri};
use crate::state::{LiveModel, tags};

/// Every feed: model -> alias -> feed.
pub type Feeds = BTreeMap<String, BTreeMap<String, Feed>>;

/// What stands behind one alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub model: String,
    pub alias: String,
    pub version: u64,
    /// The URI a model server can fetch, or why there is none.
    pub uri: Result<String, String>,
    /// The digest recorded on the version (`modelsync.digest`).
    pub digest: Option<String>,
    /// When modelsync moved the alias there (RFC 3339).
    pub promoted_at: Option<String>,
}

/// The feeds of `models` (as the last pass read them), with the locations
/// of their alias holders.
pub fn feeds(models: &BTreeMap<String, LiveModel>, locations: &Locations) -> Feeds {
    let mut out = Feeds::new();
    for (name, model) in models {
        for (alias, n) in &model.aliases {
            let v = model.versions.get(n);
            let tag = |key: &str| v.and_then(|v| v.tags.get(key)).cloned();
            let uri = match locations.get(name).and_then(|m| m.get(n)) {
                Some(Ok(location)) => serving_uri(location),
                Some(Err(why)) => Err(format!("not located: {why}")),
                None => Err("not located yet".to_string()),
            };
            let promoted = tag(&format!("{}{alias}", tags::PROMOTED_AT_PREFIX));
            let feed = Feed {
                model: name.clone(),
                alias: alias.clone(),
                version: *n,
                uri,
                digest: tag(tags::DIGEST),
                promoted_at: promoted.map(|s| tags::Stamp::parse(&s).at),
            };
            out.entry(name.clone())
                .or_default()
                .insert(alias.clone(), feed);
        }
    }
    out
}

/// The feed's JSON document.
pub fn document(f: &Feed) -> Value {
    let mut release = Map::new();
    release.insert("version".into(), json!(f.version.to_string()));
    if let Some(d) = &f.digest {
        release.insert("digest".into(), json!(d));
    }
    if let Some(at) = &f.promoted_at {
        release.insert("releaseTimestamp".into(), json!(at));
    }
    if let Ok(uri) = &f.uri {
        release.insert("uri".into(), json!(uri));
    }
    let mut doc = json!({
        "model": f.model,
        "alias": f.alias,
        "version": f.version.to_string(),
        "uri": f.uri.as_ref().ok(),
        "digest": f.digest,
        "promotedAt": f.promoted_at,
        "releases": [Value::Object(release)],
    });
    if let Err(why) = &f.uri {
        doc["uriProblem"] = json!(why);
    }
    doc
}

/// `GET /feeds/{model}/{alias}.json`.
pub async fn get(State(app): State<App>, Path((model, file)): Path<(String, String)>) -> Response {
    let feed = file.strip_suffix(".json").and_then(|alias| {
        let state = app.shared.lock();
        state.feeds.get(&model)?.get(alias).cloned()
    });
    match feed {
        Some(f) => (
            [(header::CONTENT_TYPE, "application/json")],
            format!("{:#}\n", document(&f)),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no such feed: GET /feeds/MODEL/ALIAS.json for an alias of a model the manifests declare\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::LiveVersion;

    fn model() -> LiveModel {
        let mut v7 = LiveVersion {
            version: 7,
            ..LiveVersion::default()
        };
        v7.tags.insert(tags::DIGEST.into(), "sha256:ab".into());
        v7.tags.insert(
            "modelsync.promoted-at.champion".into(),
            "2026-11-20T12:00:00Z previous=6 revision=abc".into(),
        );
        let v6 = LiveVersion {
            version: 6,
            ..LiveVersion::default()
        };
        LiveModel {
            name: "fraud <b>".into(),
            aliases: [("champion".into(), 7), ("old".into(), 6)]
                .into_iter()
                .collect(),
            versions: BTreeMap::from([(7, v7), (6, v6)]),
            ..LiveModel::default()
        }
    }

    #[test]
    fn a_feed_carries_the_version_uri_pinned_digest_and_move_time() {
        let models = BTreeMap::from([("fraud <b>".to_string(), model())]);
        let locations = Locations::from([(
            "fraud <b>".to_string(),
            BTreeMap::from([
                (7, Ok("s3://models/7".to_string())),
                (6, Ok("mlflow-artifacts:/1/x".to_string())),
            ]),
        )]);
        let f = feeds(&models, &locations);
        let champion = &f["fraud <b>"]["champion"];
        assert_eq!(
            document(champion),
            json!({
                "model": "fraud <b>", "alias": "champion", "version": "7",
                "uri": "s3://models/7", "digest": "sha256:ab",
                "promotedAt": "2026-11-20T12:00:00Z",
                "releases": [{"version": "7", "digest": "sha256:ab",
                              "releaseTimestamp": "2026-11-20T12:00:00Z",
                              "uri": "s3://models/7"}]
            })
        );
        // Unpinned, never moved by modelsync, proxied: no nulls in the release.
        let old = document(&f["fraud <b>"]["old"]);
        assert_eq!(old["releases"], json!([{"version": "6"}]));
        assert_eq!(old["uri"], Value::Null);
        assert!(
            old["uriProblem"]
                .as_str()
                .is_some_and(|p| p.contains("only MLflow can follow it")),
            "{old}"
        );
        // Not located at all.
        let f = feeds(&models, &Locations::new());
        assert_eq!(
            f["fraud <b>"]["champion"].uri,
            Err("not located yet".to_string())
        );
    }
}

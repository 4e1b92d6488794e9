//! Bulk pages folded as they arrive: the pages of a search after the first
//! (asked for [`PAGE_CONCURRENCY`] at a time when its tokens are MLflow's
//! offsets), and the versions of those pages turned into live versions per
//! model as each page is decoded.
//!
//! Memory is bounded by the registry's live state and the bodies in
//! flight, not by wire data: a bulk page is decoded straight into live
//! versions ([`FoldedVersions`]: each wire version is converted as it is
//! read and dropped, so a page never exists as a list of wire versions),
//! and the versions are kept under their model's name once (a page repeats
//! it in every version). At 10,000 models × 10 versions, four pages of
//! 20,000 wire versions in flight were 26 MB of the plan's peak.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use futures_util::{StreamExt, stream};
use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};

use super::paging::Page;
use super::wire::ModelVersion;
use crate::registry::{RegistryError, Result, Scope};
use crate::state::{LiveModel, LiveVersion};

/// Pages of one search asked for at once, once its tokens are known to be
/// offsets (MLflow's default is 4 server workers).
const PAGE_CONCURRENCY: usize = 4;

/// Live versions per model name, folded version by version and page by
/// page; a model whose versions could not be mapped keeps its first error,
/// raised only if the model is attached (a version of a model out of scope
/// is never an error).
#[derive(Debug, Default)]
pub struct Versions {
    by_model: BTreeMap<String, BTreeMap<u64, LiveVersion>>,
    bad: BTreeMap<String, RegistryError>,
}

impl Versions {
    /// Folds wire versions in (first seen wins, as pages come in order),
    /// leaving out the models `scope` does not hold; the page is consumed,
    /// so its wire data is dropped here.
    pub fn fold(&mut self, page: Vec<ModelVersion>, scope: &Scope) {
        for v in page {
            self.fold_one(v, scope);
        }
    }

    fn fold_one(&mut self, v: ModelVersion, scope: &Scope) {
        if !scope.contains(&v.name) || self.bad.contains_key(&v.name) {
            return;
        }
        // The name is kept once per model (the map's key); the wire
        // version's copy is dropped with it.
        let name = v.name.clone();
        match v.into_live() {
            Ok(live) => {
                let versions = self.by_model.entry(name).or_default();
                versions.entry(live.version).or_insert(live);
            }
            Err(e) => {
                self.by_model.remove(&name);
                self.bad.insert(name, e.into());
            }
        }
    }

    /// Folds a later page's versions in, as [`Versions::fold`] would have
    /// folded its wire versions: first seen wins, a model's first error
    /// stands, models out of `scope` are left out. A model not seen before
    /// is moved in whole.
    pub fn merge(&mut self, page: Versions, scope: &Scope) {
        for (name, e) in page.bad {
            if scope.contains(&name) && !self.bad.contains_key(&name) {
                self.by_model.remove(&name);
                self.bad.insert(name, e);
            }
        }
        for (name, versions) in page.by_model {
            if !scope.contains(&name) || self.bad.contains_key(&name) {
                continue;
            }
            match self.by_model.entry(name) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(versions);
                }
                std::collections::btree_map::Entry::Occupied(mut mine) => {
                    for (n, v) in versions {
                        mine.get_mut().entry(n).or_insert(v);
                    }
                }
            }
        }
    }

    /// Puts the versions under their models (moved, not copied); versions
    /// of models not in `models` are dropped (out of scope). A model in
    /// `models` whose versions could not be mapped is an error.
    pub fn attach(self, models: &mut BTreeMap<String, LiveModel>) -> Result<()> {
        if let Some((_, e)) = self
            .bad
            .into_iter()
            .find(|(name, _)| models.contains_key(name))
        {
            return Err(e);
        }
        for (name, versions) in self.by_model {
            match models.get_mut(&name) {
                // The usual case: the map moves in whole (no node rebuilt).
                Some(model) if model.versions.is_empty() => model.versions = versions,
                Some(model) => {
                    for (n, v) in versions {
                        model.versions.entry(n).or_insert(v);
                    }
                }
                None => {}
            }
        }
        Ok(())
    }
}

/// A list of wire versions decodes straight into [`Versions`] (every
/// model: the scope is applied when the page is merged).
impl<'de> Deserialize<'de> for Versions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Fold;
        impl<'de> Visitor<'de> for Fold {
            type Value = Versions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of model versions")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Versions, A::Error> {
                let mut out = Versions::default();
                while let Some(v) = seq.next_element::<ModelVersion>()? {
                    out.fold_one(v, &Scope::All);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Fold)
    }
}

/// One `model-versions/search` page decoded into live versions (the bulk
/// read's page; [`super::wire::ModelVersionPage`] keeps the wire versions).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FoldedVersions {
    model_versions: Versions,
    next_page_token: String,
}

impl Page for FoldedVersions {
    type Items = Versions;
    fn into_parts(self) -> (Versions, String) {
        (self.model_versions, self.next_page_token)
    }
}

/// The pages after the first, whose answer named `next`, each handed to
/// `take` in order as it arrives. MLflow's OSS tokens are offsets
/// (`base64({"offset": N})`): when `next` is exactly the token for the
/// first page's size, the following pages are asked for
/// [`PAGE_CONCURRENCY`] at a time, each with the token of its offset, so
/// the server's workers build them side by side instead of one after
/// another; a page is taken as soon as the ones before it were, so at most
/// one page per request in flight is held. Any other token (another
/// server, another format) is followed page by page.
pub async fn rest_of_pages<T, F, Fut>(
    mut next: String,
    page_size: u64,
    fetch: F,
    mut take: impl FnMut(T),
) -> Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(T, String)>>,
{
    let mut seen = HashSet::new();
    let mut offset = Some(page_size);
    while !next.is_empty() && seen.insert(next.clone()) {
        match offset {
            Some(at) if next == offset_token(at) => {
                let tokens = (0..PAGE_CONCURRENCY as u64).map(|i| offset_token(at + i * page_size));
                let mut pages = stream::iter(tokens.map(&fetch)).buffered(PAGE_CONCURRENCY);
                let (mut at, mut last) = (at, false);
                // Every page asked for is awaited (the requests were sent),
                // the ones after the last page only to be dropped.
                while let Some(page) = pages.next().await {
                    let (items, token) = page?;
                    if last {
                        continue;
                    }
                    take(items);
                    at += page_size;
                    next = token;
                    last = next != offset_token(at);
                }
                offset = Some(at);
            }
            _ => {
                offset = None;
                let (items, token) = fetch(next.clone()).await?;
                take(items);
                next = token;
            }
        }
    }
    Ok(())
}

/// MLflow's page token for `offset`: `base64(json.dumps({"offset": N}))`.
fn offset_token(offset: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_tokens_are_mlflows() {
        // base64.b64encode(json.dumps({"offset": N}).encode())
        assert_eq!(offset_token(1000), "eyJvZmZzZXQiOiAxMDAwfQ==");
        assert_eq!(offset_token(20000), "eyJvZmZzZXQiOiAyMDAwMH0=");
        assert_eq!(offset_token(5), "eyJvZmZzZXQiOiA1fQ==");
    }

    async fn collect<T, F, Fut>(next: String, page_size: u64, fetch: F) -> Vec<T>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<T>, String)>>,
    {
        let mut out = Vec::new();
        rest_of_pages(next, page_size, fetch, |items| out.extend(items))
            .await
            .expect("pages");
        out
    }

    #[tokio::test]
    async fn pages_after_the_first_come_four_at_a_time_and_stop_at_the_last() {
        use std::sync::Mutex;
        // 10 items, pages of 2: offsets 0, 2, 4, 6, 8.
        let asked = Mutex::new(Vec::new());
        let fetch = |token: String| {
            let at = (0..20)
                .find(|o| offset_token(*o) == token)
                .expect("offset token");
            asked.lock().unwrap().push(at);
            async move {
                let items: Vec<u64> = (at..(at + 2).min(10)).collect();
                let next = if at + 2 < 10 {
                    offset_token(at + 2)
                } else {
                    String::new()
                };
                Ok((items, next))
            }
        };
        let rest = collect(offset_token(2), 2, fetch).await;
        assert_eq!(rest, (2..10).collect::<Vec<_>>());
        assert_eq!(*asked.lock().unwrap(), vec![2, 4, 6, 8]);
        // A token that is not an offset: page by page.
        let seq = |token: String| async move {
            Ok(match token.as_str() {
                "a" => (vec![1], "b".to_string()),
                _ => (vec![2], String::new()),
            })
        };
        assert_eq!(collect("a".into(), 2, seq).await, vec![1, 2]);
    }

    #[tokio::test]
    async fn each_page_is_taken_before_the_next_is_asked_for_past_the_batch() {
        // 3 items, pages of 1 (offsets 1, 2 after the first): the batch of
        // four asks for offsets 1..=4; the pages past the last one are
        // awaited and dropped, never taken.
        let fetch = |token: String| async move {
            let at = (0..20).find(|o| offset_token(*o) == token).expect("token");
            let items: Vec<u64> = if at < 3 { vec![at] } else { vec![] };
            let next = if at + 1 < 3 {
                offset_token(at + 1)
            } else {
                String::new()
            };
            Ok((items, next))
        };
        let mut pages = Vec::new();
        rest_of_pages(offset_token(1), 1, fetch, |items: Vec<u64>| {
            pages.push(items)
        })
        .await
        .expect("pages");
        assert_eq!(pages, vec![vec![1], vec![2]]);
    }

    fn wire(name: &str, version: u64, stage: &str) -> ModelVersion {
        ModelVersion {
            name: name.to_owned(),
            version,
            current_stage: stage.to_owned(),
            source: format!("s3://b/{name}/{version}"),
            ..ModelVersion::default()
        }
    }

    fn model(name: &str) -> LiveModel {
        LiveModel {
            name: name.to_owned(),
            ..LiveModel::default()
        }
    }

    #[test]
    fn versions_fold_per_page_into_their_models_and_leave_out_the_rest() {
        let mut v = Versions::default();
        let scope = Scope::Named(["a".to_owned(), "b".to_owned()].into());
        v.fold(
            vec![wire("a", 1, "Archived"), wire("a", 2, "Production")],
            &scope,
        );
        v.fold(vec![wire("a", 3, ""), wire("b", 1, "Staging")], &scope);
        v.fold(
            vec![wire("c", 1, "Nonsense"), wire("a", 3, "Production")],
            &scope,
        );
        let mut models =
            BTreeMap::from([("a".to_owned(), model("a")), ("z".to_owned(), model("z"))]);
        v.attach(&mut models).expect("attach");
        let a = &models["a"].versions;
        assert_eq!(a.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        // First seen wins.
        assert_eq!(a[&3].stage, crate::state::Stage::None);
        assert!(models["z"].versions.is_empty());
        assert!(!models.contains_key("b"));
    }

    #[test]
    fn a_page_decoded_into_live_versions_merges_as_its_wire_versions_fold() {
        let pages = [
            r#"{"model_versions": [{"name": "a", "version": "1", "current_stage": "Archived"},
                {"name": "a", "version": "2", "current_stage": "Production"}],
                "next_page_token": "t1"}"#,
            r#"{"model_versions": [{"name": "a", "version": "3"},
                {"name": "b", "version": "1", "current_stage": "Nonsense"},
                {"name": "c", "version": "1", "current_stage": "Staging"}]}"#,
            r#"{"model_versions": [{"name": "a", "version": "3", "current_stage": "Production"},
                {"name": "b", "version": "2"}, {"name": "z", "version": "1"}]}"#,
        ];
        let scope = Scope::Named(["a".to_owned(), "b".to_owned(), "c".to_owned()].into());
        let (mut folded, mut merged) = (Versions::default(), Versions::default());
        for (i, page) in pages.iter().enumerate() {
            let wire: super::super::wire::ModelVersionPage =
                serde_json::from_str(page).expect("wire page");
            folded.fold(wire.model_versions, &scope);
            let (versions, token) = serde_json::from_str::<FoldedVersions>(page)
                .expect("folded page")
                .into_parts();
            assert_eq!(token, if i == 0 { "t1" } else { "" });
            merged.merge(versions, &scope);
        }
        assert_eq!(
            format!("{:?}", folded.by_model),
            format!("{:?}", merged.by_model)
        );
        assert_eq!(
            folded.bad.keys().collect::<Vec<_>>(),
            merged.bad.keys().collect::<Vec<_>>()
        );
        // First seen wins; b's bad stage fails b; z is out of scope.
        assert_eq!(merged.by_model["a"][&3].stage, crate::state::Stage::None);
        assert!(merged.bad.contains_key("b") && !merged.by_model.contains_key("b"));
        assert!(!merged.by_model.contains_key("z"));
        let empty: FoldedVersions = serde_json::from_str("{}").expect("empty page");
        assert!(empty.model_versions.by_model.is_empty());
    }

    #[test]
    fn a_bad_version_fails_only_a_model_that_is_attached() {
        let mut v = Versions::default();
        v.fold(
            vec![wire("a", 1, "Nonsense"), wire("a", 2, "Production")],
            &Scope::All,
        );
        v.fold(vec![wire("b", 1, "Staging")], &Scope::All);
        let mut only_b = BTreeMap::from([("b".to_owned(), model("b"))]);
        let mut both = only_b.clone();
        both.insert("a".to_owned(), model("a"));
        let again = |v: &Versions| Versions {
            by_model: v.by_model.clone(),
            bad: v
                .bad
                .iter()
                .map(|(k, e)| (k.clone(), RegistryError::Other(e.to_string())))
                .collect(),
        };
        again(&v).attach(&mut only_b).expect("b alone attaches");
        assert_eq!(only_b["b"].versions.len(), 1);
        let err = v.attach(&mut both).expect_err("a's bad stage");
        assert!(err.to_string().contains("Nonsense"), "{err}");
    }
}

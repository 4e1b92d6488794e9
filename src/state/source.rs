//! Which live version a declared source is: the one rule the planner, the
//! executor and both registries use (`docs/manifest-format.md`, "source"),
//! and the one place the `modelsync.source` tag is put on a new version.
//!
//! The rule, over a model's versions:
//!
//! 1. a version carrying the `modelsync.source` tag with the declared
//!    source (modelsync registered it) — whatever it stored and whatever run
//!    it has;
//! 2. otherwise a version whose stored source is the declared source, or
//!    what the registry stores for it (MLflow 3 turns `runs:/<run>/<path>`
//!    into `models:/m-…`), and whose run, where one is declared, is that
//!    run (a version without a run matches any) — a version registered by
//!    hand is adopted, never registered again;
//! 3. among several, the lowest version number; a `FAILED_REGISTRATION`
//!    version only when no other matches (it is reported, never moved).
//!
//! Pure: plain data in, a reference out.

use std::collections::BTreeMap;

use super::{LiveModel, LiveVersion, VersionStatus, tags};

/// A source as a manifest declares it, with what identifies its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeclaredSource<'a> {
    /// The source as declared: the value of the `modelsync.source` tag.
    pub source: &'a str,
    /// The run declared (or derived from `runs:/<run>/…`), if any.
    pub run_id: Option<&'a str>,
    /// What the registry stores for the source, when it resolved it to
    /// something else (MLflow 3: `models:/m-…`), or the source sent to
    /// `model-versions/create`.
    pub stored_as: Option<&'a str>,
}

impl<'a> DeclaredSource<'a> {
    /// A declared source with no run and no resolution.
    pub fn new(source: &'a str) -> DeclaredSource<'a> {
        DeclaredSource {
            source,
            run_id: None,
            stored_as: None,
        }
    }

    /// The version of `versions` this source is, by the rule in the module
    /// docs; `None` when it has none (it is to be registered).
    pub fn find_in<'v>(
        &self,
        versions: impl IntoIterator<Item = &'v LiveVersion>,
    ) -> Option<&'v LiveVersion> {
        versions
            .into_iter()
            .filter_map(|v| self.rank(v).map(|rank| (rank, v)))
            .min_by_key(|((failed, tier), v)| (*failed, *tier, v.version))
            .map(|(_, v)| v)
    }

    /// Adds the `modelsync.source` tag to a new version's `tags`: how the
    /// version is recognised later, whatever the registry stored.
    pub fn tag(&self, tags: &mut BTreeMap<String, String>) {
        tags.insert(tags::SOURCE.to_string(), self.source.to_string());
    }

    /// `new_tags` with the `modelsync.source` tag added ([`Self::tag`]).
    pub fn tagged(&self, new_tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut all = new_tags.clone();
        self.tag(&mut all);
        all
    }

    /// How well `v` matches: (failed registration, tier — 0 by the tag, 1
    /// by the stored source), lower is better; `None`: not this source.
    fn rank(&self, v: &LiveVersion) -> Option<(bool, u8)> {
        let tier = if self.is_tagged_on(v) {
            0
        } else if self.is_stored_as(v) {
            1
        } else {
            return None;
        };
        Some((v.status == VersionStatus::FailedRegistration, tier))
    }

    fn is_tagged_on(&self, v: &LiveVersion) -> bool {
        v.tags.get(tags::SOURCE).map(String::as_str) == Some(self.source)
    }

    fn is_stored_as(&self, v: &LiveVersion) -> bool {
        let same_source = v.source == self.source || self.stored_as == Some(v.source.as_str());
        let same_run = self
            .run_id
            .is_none_or(|r| v.run_id.is_empty() || v.run_id == r);
        same_source && same_run
    }
}

impl LiveModel {
    /// The version of this model that `declared` is ([`DeclaredSource`]'s
    /// rule), if the model has one.
    pub fn version_for_source(&self, declared: &DeclaredSource<'_>) -> Option<&LiveVersion> {
        declared.find_in(self.versions.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(n: u64, source: &str) -> LiveVersion {
        LiveVersion {
            version: n,
            source: source.to_string(),
            ..LiveVersion::default()
        }
    }

    fn tagged(mut v: LiveVersion, declared: &str) -> LiveVersion {
        v.tags
            .insert(tags::SOURCE.to_string(), declared.to_string());
        v
    }

    fn model(versions: Vec<LiveVersion>) -> LiveModel {
        LiveModel {
            versions: versions.into_iter().map(|v| (v.version, v)).collect(),
            ..LiveModel::default()
        }
    }

    fn found(m: &LiveModel, d: &DeclaredSource<'_>) -> Option<u64> {
        m.version_for_source(d).map(|v| v.version)
    }

    #[test]
    fn the_tag_wins_over_a_lower_version_with_the_same_stored_source() {
        let m = model(vec![
            version(1, "s3://b/m"),
            tagged(version(2, "s3://b/m"), "s3://b/m"),
        ]);
        assert_eq!(found(&m, &DeclaredSource::new("s3://b/m")), Some(2));
    }

    #[test]
    fn a_version_registered_by_hand_is_found_by_its_stored_source() {
        let m = model(vec![version(1, "s3://other"), version(3, "s3://b/m")]);
        assert_eq!(found(&m, &DeclaredSource::new("s3://b/m")), Some(3));
        assert_eq!(found(&m, &DeclaredSource::new("s3://none")), None);
    }

    #[test]
    fn the_resolution_is_a_stored_source_too() {
        let m = model(vec![version(2, "models:/m-2")]);
        let d = DeclaredSource {
            source: "runs:/r2/model",
            run_id: Some("r2"),
            stored_as: Some("models:/m-2"),
        };
        assert_eq!(found(&m, &d), Some(2));
        assert_eq!(found(&m, &DeclaredSource::new("runs:/r2/model")), None);
    }

    #[test]
    fn a_declared_run_must_be_the_stored_versions_run_unless_it_has_none() {
        let mut other = version(1, "s3://b/m");
        other.run_id = "elsewhere".into();
        let mut same = version(2, "s3://b/m");
        same.run_id = "r1".into();
        let m = model(vec![other.clone(), same]);
        let d = DeclaredSource {
            run_id: Some("r1"),
            ..DeclaredSource::new("s3://b/m")
        };
        assert_eq!(found(&m, &d), Some(2));
        assert_eq!(found(&model(vec![other]), &d), None);
        assert_eq!(found(&model(vec![version(4, "s3://b/m")]), &d), Some(4));
    }

    #[test]
    fn the_tag_alone_identifies_a_version_modelsync_registered() {
        let mut v = tagged(version(5, "models:/m-5"), "s3://b/m");
        v.run_id = "r0".into();
        let d = DeclaredSource {
            run_id: Some("r1"),
            ..DeclaredSource::new("s3://b/m")
        };
        assert_eq!(found(&model(vec![v]), &d), Some(5));
    }

    #[test]
    fn the_lowest_wins_and_a_failed_registration_only_when_nothing_else_matches() {
        let mut failed = tagged(version(1, "s3://b/m"), "s3://b/m");
        failed.status = VersionStatus::FailedRegistration;
        let d = DeclaredSource::new("s3://b/m");
        let m = model(vec![
            failed.clone(),
            version(3, "s3://b/m"),
            version(2, "s3://b/m"),
        ]);
        assert_eq!(found(&m, &d), Some(2));
        assert_eq!(found(&model(vec![failed]), &d), Some(1));
    }

    #[test]
    fn the_source_tag_is_added_to_a_new_versions_tags() {
        let d = DeclaredSource::new("runs:/r/model");
        let tags = BTreeMap::from([("team".to_string(), "ml".to_string())]);
        assert_eq!(
            d.tagged(&tags),
            BTreeMap::from([
                ("modelsync.source".to_string(), "runs:/r/model".to_string()),
                ("team".to_string(), "ml".to_string()),
            ])
        );
    }
}

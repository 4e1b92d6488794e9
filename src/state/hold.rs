//! Holds and freezes: the vocabulary every layer shares (issue 19).
//!
//! A **hold** pins one target (a stage or an alias) of one registered
//! model to one version: no applier and no daemon replica moves that
//! target while it stands, until the manifests declare the held version
//! (git caught up: the pass releases it) or a person releases it
//! (`modelsync hold release`). It lives on the registered model as the tag
//! `modelsync.hold.<stage-or-alias>` ([`tag_key`], the target spelled as in
//! `modelsync.promoted-at.<target>`), its value a small JSON object
//! ([`Hold`]): which version, who, when, why and what caused it. Read
//! leniently (unknown fields kept, a number written as a string accepted;
//! a value that is not a hold at all still holds the target, at no
//! version, so that only a person releases it), written canonically.
//!
//! A **freeze** ([`Freeze`]) stops every move by every applier and replica:
//! who, when, why. Where it is kept is the registry's business (MLflow: a
//! registered model of a reserved name, like the lease; the embedded
//! registry: its file); every snapshot reports it (`LiveState::freeze`).
//!
//! The **actor** ([`actor`]) is who a person's command acts as: recorded in
//! holds, freezes and audit stamps. Pure: the environment comes in as a
//! lookup.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::LiveModel;
use super::tags;

/// What placed a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// `modelsync rollback`, or a verification's `onFailure: rollback`.
    Rollback,
    /// A verification failed (`onFailure: hold`).
    VerificationFailed,
    /// A person held the target as it is.
    Manual,
    /// A cause this release does not know (written by a newer one).
    #[serde(other)]
    Unknown,
}

impl Cause {
    /// The cause as written in the tag (`rollback`, `verification-failed`,
    /// `manual`).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Rollback => "rollback",
            Cause::VerificationFailed => "verification-failed",
            Cause::Manual => "manual",
            Cause::Unknown => "unknown",
        }
    }

    /// Whether the pass releases a hold of this cause once the manifests
    /// declare its version for its target (git caught up). A failed
    /// verification's hold stands on the version the manifests already
    /// declare, so only a person releases it (`hold release`).
    pub fn released_by_git(self) -> bool {
        match self {
            Cause::Rollback | Cause::Manual | Cause::Unknown => true,
            Cause::VerificationFailed => false,
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hold on one target of one model: the value of its
/// `modelsync.hold.<target>` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The version the target is held at (0: unreadable hold, no version).
    #[serde(deserialize_with = "lenient_u64")]
    pub version: u64,
    /// Who placed it ([`actor`]).
    #[serde(default)]
    pub by: String,
    /// When, RFC 3339 (the evaluation clock).
    #[serde(default)]
    pub at: String,
    /// Why, as the person (or the verification) said.
    #[serde(default)]
    pub reason: String,
    #[serde(default = "unknown_cause")]
    pub cause: Cause,
    /// Fields a newer release added: kept when the hold is rewritten.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn unknown_cause() -> Cause {
    Cause::Unknown
}

fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(u64),
        Text(String),
    }
    match N::deserialize(d)? {
        N::Num(n) => Ok(n),
        N::Text(t) => t.trim().parse().map_err(serde::de::Error::custom),
    }
}

impl Hold {
    /// Reads a tag's value. A value that is not a hold still holds the
    /// target (at version 0, which no version has: only a person releases
    /// it), its reason saying why it could not be read.
    pub fn parse(value: &str) -> Hold {
        serde_json::from_str(value).unwrap_or_else(|e| Hold {
            version: 0,
            by: String::new(),
            at: String::new(),
            reason: format!("unreadable hold tag ({e}): {value:?}"),
            cause: Cause::Unknown,
            extra: BTreeMap::new(),
        })
    }

    /// The tag's value: compact JSON, fields in a fixed order.
    pub fn render(&self) -> String {
        serde_json::to_string(self).expect("a hold is plain data")
    }

    /// `version 2, held by alice@host since 2026-…Z (rollback): "why"`.
    pub fn describe(&self) -> String {
        let version = if self.version == 0 {
            "no readable version".to_string()
        } else {
            format!("version {}", self.version)
        };
        let by = if self.by.is_empty() {
            "someone"
        } else {
            &self.by
        };
        let mut text = format!("{version}, held by {by}");
        if !self.at.is_empty() {
            text.push_str(&format!(" since {}", self.at));
        }
        text.push_str(&format!(" ({})", self.cause));
        if !self.reason.is_empty() {
            text.push_str(&format!(": {:?}", self.reason));
        }
        text
    }
}

/// The model tag holding `target` (a stage's canonical name or an alias):
/// `modelsync.hold.<target>`.
pub fn tag_key(target: &str) -> String {
    format!("{}{target}", tags::HOLD_PREFIX)
}

/// Every hold on `model`: target -> hold, sorted by target.
pub fn holds(model: &LiveModel) -> BTreeMap<String, Hold> {
    model
        .tags
        .iter()
        .filter_map(|(k, v)| {
            let target = k.strip_prefix(tags::HOLD_PREFIX)?;
            (!target.is_empty()).then(|| (target.to_string(), Hold::parse(v)))
        })
        .collect()
}

/// A freeze: every move stopped, by whom, since when, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    #[serde(default)]
    pub by: String,
    /// RFC 3339 (the evaluation clock).
    #[serde(default)]
    pub at: String,
    #[serde(default)]
    pub reason: String,
}

impl Freeze {
    /// Reads a stored freeze; one that cannot be read still freezes
    /// (only `modelsync unfreeze` lifts it).
    pub fn parse(value: &str) -> Freeze {
        serde_json::from_str(value).unwrap_or_else(|e| Freeze {
            by: String::new(),
            at: String::new(),
            reason: format!("unreadable freeze ({e}): {value:?}"),
        })
    }

    /// Compact JSON, fields in a fixed order.
    pub fn render(&self) -> String {
        serde_json::to_string(self).expect("a freeze is plain data")
    }

    /// `frozen by alice@host since 2026-…Z: "why"`.
    pub fn describe(&self) -> String {
        let by = if self.by.is_empty() {
            "someone"
        } else {
            &self.by
        };
        let mut text = format!("frozen by {by}");
        if !self.at.is_empty() {
            text.push_str(&format!(" since {}", self.at));
        }
        if !self.reason.is_empty() {
            text.push_str(&format!(": {:?}", self.reason));
        }
        text
    }
}

/// Who a person's command acts as: `MODELSYNC_ACTOR` as given, else
/// `GITHUB_ACTOR` (a GitHub Actions run: the person who started it), else
/// the OS user (`USER`, `LOGNAME`, `USERNAME`) at `host`.
pub fn actor(lookup: impl Fn(&str) -> Option<String>, host: &str) -> String {
    let set = |k: &str| {
        lookup(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(a) = set("MODELSYNC_ACTOR") {
        return a;
    }
    if let Some(a) = set("GITHUB_ACTOR") {
        return a;
    }
    let user = set("USER")
        .or_else(|| set("LOGNAME"))
        .or_else(|| set("USERNAME"))
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold() -> Hold {
        Hold {
            version: 3,
            by: "alice@ci".into(),
            at: "2026-03-01T10:00:00Z".into(),
            reason: "p99 latency doubled".into(),
            cause: Cause::Rollback,
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn only_a_failed_verifications_hold_outlives_git_catching_up() {
        let released: Vec<Cause> = [
            Cause::Rollback,
            Cause::VerificationFailed,
            Cause::Manual,
            Cause::Unknown,
        ]
        .into_iter()
        .filter(|c| c.released_by_git())
        .collect();
        assert_eq!(released, [Cause::Rollback, Cause::Manual, Cause::Unknown]);
    }

    #[test]
    fn a_hold_renders_canonically_and_reads_back() {
        let h = hold();
        assert_eq!(
            h.render(),
            r#"{"version":3,"by":"alice@ci","at":"2026-03-01T10:00:00Z","reason":"p99 latency doubled","cause":"rollback"}"#
        );
        assert_eq!(Hold::parse(&h.render()), h);
        assert_eq!(
            h.describe(),
            "version 3, held by alice@ci since 2026-03-01T10:00:00Z (rollback): \"p99 latency doubled\""
        );
    }

    #[test]
    fn holds_are_read_leniently() {
        let h = Hold::parse(r#"{"version":"7","cause":"verification-failed","checks":[1]}"#);
        assert_eq!(h.version, 7);
        assert_eq!(h.cause, Cause::VerificationFailed);
        assert!(h.by.is_empty() && h.reason.is_empty());
        // A newer release's field survives a rewrite.
        assert!(h.render().contains(r#""checks":[1]"#), "{}", h.render());
        let newer = Hold::parse(r#"{"version":1,"cause":"scheduled"}"#);
        assert_eq!(newer.cause, Cause::Unknown);
        let junk = Hold::parse("not json");
        assert_eq!(junk.version, 0, "still a hold, at no version");
        assert!(junk.reason.starts_with("unreadable hold tag"), "{junk:?}");
    }

    #[test]
    fn holds_of_a_model_by_target() {
        let mut m = LiveModel::default();
        m.tags.insert(tag_key("Production"), hold().render());
        m.tags.insert(tag_key("champion"), "{}".into());
        m.tags.insert("modelsync.hold.".into(), "x".into());
        m.tags.insert("team".into(), "ml".into());
        let found = holds(&m);
        assert_eq!(found.keys().collect::<Vec<_>>(), ["Production", "champion"]);
        assert_eq!(found["Production"], hold());
        assert_eq!(found["champion"].version, 0, "no version: unreadable");
        assert_eq!(tag_key("champion"), "modelsync.hold.champion");
    }

    #[test]
    fn a_freeze_reads_back_and_an_unreadable_one_still_freezes() {
        let f = Freeze {
            by: "bob".into(),
            at: "2026-03-01T10:00:00Z".into(),
            reason: "incident 42".into(),
        };
        assert_eq!(Freeze::parse(&f.render()), f);
        assert_eq!(
            f.describe(),
            "frozen by bob since 2026-03-01T10:00:00Z: \"incident 42\""
        );
        assert!(Freeze::parse("?").reason.starts_with("unreadable freeze"));
    }

    #[test]
    fn the_actor_is_named_by_the_environment_then_the_os_user() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            actor(
                env(&[("MODELSYNC_ACTOR", "ops-bot"), ("GITHUB_ACTOR", "x")]),
                "h"
            ),
            "ops-bot"
        );
        assert_eq!(
            actor(env(&[("GITHUB_ACTOR", "octocat"), ("USER", "u")]), "h"),
            "octocat"
        );
        assert_eq!(actor(env(&[("USER", " "), ("LOGNAME", "l")]), "h"), "l@h");
        assert_eq!(actor(env(&[]), "h"), "unknown@h");
    }
}

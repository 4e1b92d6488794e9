//! A version's verification in one target (issue 19): the record every
//! replica, `get`, `history`, the status page and saved plans read.
//!
//! A move into a stage or alias that declares `verify:` starts a
//! verification of the version that moved; its state lives on that version
//! as the tag `modelsync.verified.<stage-or-alias>` ([`tag_key`], the
//! target spelled as in `modelsync.promoted-at.<target>`), a small JSON
//! object ([`Record`]): the state (`verifying`, `verified`, `failed`),
//! when it started and last changed, the manifests' revision, since when
//! the checks have kept passing, and what the last round of checks
//! observed — bounded in size ([`MAX_LEN`]), whatever the checks saw.
//!
//! Times are real (wall-clock) instants in RFC 3339 (`plan::verify` reads
//! them): a verification runs in real time. Read leniently (an unreadable value is a verification in
//! an unknown state, never a passed one), written canonically. Pure.

use serde::{Deserialize, Serialize};

use super::tags;

/// The longest value [`Record::render`] writes (MLflow's protocol
/// guarantees 5,000 characters for a tag value).
pub const MAX_LEN: usize = 4_000;
/// The longest check name or observation kept in a record.
const MAX_FIELD: usize = 240;

/// Where a verification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Checks are running (or due, after a restart: the leader resumes it).
    Verifying,
    /// The checks kept passing for the declared time.
    Verified,
    /// The checks did not pass for long enough before the timeout.
    Failed,
    /// A state this release does not know, or an unreadable record.
    #[serde(other)]
    Unknown,
}

impl State {
    /// `verifying`, `verified`, `failed`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Verifying => "verifying",
            State::Verified => "verified",
            State::Failed => "failed",
            State::Unknown => "unknown",
        }
    }

    /// True once the verification ended (passed or failed).
    pub fn is_final(self) -> bool {
        matches!(self, State::Verified | State::Failed)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one check observed in the last round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// The check as written (`http POST http://…/invocations`,
    /// `metric online_auc >= 0.8`).
    pub check: String,
    pub ok: bool,
    /// What was seen (`status 200, condition true`, `online_auc 0.91 >=
    /// 0.80, from logged model m-…`), never a response body.
    pub observed: String,
}

/// The value of a `modelsync.verified.<target>` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub state: State,
    /// When the verification started (the move), RFC 3339.
    #[serde(default)]
    pub since: String,
    /// When the record last changed, RFC 3339.
    #[serde(default)]
    pub at: String,
    /// The manifests' revision of the move, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Since when every check has kept passing, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passing_since: Option<String>,
    /// When it passed or failed, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Rounds of checks run so far.
    #[serde(default)]
    pub rounds: u32,
    /// The last round's observations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckRecord>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What was done about a failure (`rolled back to version 3, held`,
    /// `held`), once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<String>,
}

/// `then` of a failure rolled back to version `to` (and held there).
pub fn rolled_back_then(to: u64) -> String {
    format!("{ROLLED_BACK}{to}, held")
}

/// `then` of a failure held at version `v`.
pub fn held_then(v: u64) -> String {
    format!("{HELD}{v}")
}

const ROLLED_BACK: &str = "rolled back to version ";
const HELD: &str = "held at version ";

impl Record {
    /// True when `onFailure` rolled the target back ([`rolled_back_then`]).
    pub fn rolled_back(&self) -> bool {
        self.then
            .as_deref()
            .is_some_and(|t| t.starts_with(ROLLED_BACK))
    }

    /// True when `onFailure` left a hold on the target (a rollback holds
    /// too).
    pub fn held(&self) -> bool {
        self.rolled_back() || self.then.as_deref().is_some_and(|t| t.starts_with(HELD))
    }

    /// A verification starting at `since` (RFC 3339) for a move made at
    /// `revision`.
    pub fn start(since: String, revision: Option<String>) -> Record {
        Record {
            state: State::Verifying,
            at: since.clone(),
            since,
            revision,
            passing_since: None,
            finished: None,
            rounds: 0,
            checks: Vec::new(),
            reason: None,
            then: None,
        }
    }

    /// Reads a tag's value; one that cannot be read is a verification in
    /// an unknown state (never passed), its reason saying why.
    pub fn parse(value: &str) -> Record {
        serde_json::from_str(value)
            .unwrap_or_else(|e| Record {
                reason: Some(clip(&format!("unreadable verification record ({e})"))),
                ..Record::start(String::new(), None)
            })
            .with_state_known()
    }

    fn with_state_known(mut self) -> Record {
        if self
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("unreadable"))
        {
            self.state = State::Unknown;
        }
        self
    }

    /// The tag's value: compact JSON, at most [`MAX_LEN`] characters (long
    /// observations clipped, then the last checks dropped).
    pub fn render(&self) -> String {
        let mut r = self.clone();
        for c in &mut r.checks {
            c.check = clip(&c.check);
            c.observed = clip(&c.observed);
        }
        r.reason = r.reason.as_deref().map(clip);
        r.then = r.then.as_deref().map(clip);
        let mut out = serde_json::to_string(&r).expect("a record is plain data");
        while out.len() > MAX_LEN && !r.checks.is_empty() {
            r.checks.pop();
            out = serde_json::to_string(&r).expect("a record is plain data");
        }
        out
    }

    /// When it passed, RFC 3339 (`None` unless verified).
    pub fn verified_at(&self) -> Option<&str> {
        (self.state == State::Verified)
            .then_some(self.finished.as_deref())
            .flatten()
    }

    /// `verified at 2026-…Z`, `verifying since …`, `failed at …: why`.
    pub fn describe(&self) -> String {
        match self.state {
            State::Verifying => {
                let mut s = format!("verifying since {}", self.since);
                if let Some(p) = &self.passing_since {
                    s.push_str(&format!(", passing since {p}"));
                }
                s
            }
            State::Verified => format!(
                "verified at {}",
                self.finished.as_deref().unwrap_or(&self.at)
            ),
            State::Failed => {
                let mut s = format!("failed at {}", self.finished.as_deref().unwrap_or(&self.at));
                if let Some(r) = &self.reason {
                    s.push_str(&format!(": {r}"));
                }
                if let Some(t) = &self.then {
                    s.push_str(&format!(" ({t})"));
                }
                s
            }
            State::Unknown => format!(
                "in an unknown state{}",
                self.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// The version tag holding the verification in `target` (a stage's
/// canonical name or an alias): `modelsync.verified.<target>`.
pub fn tag_key(target: &str) -> String {
    format!("{}{target}", tags::VERIFIED_PREFIX)
}

/// The verification of `version` in `target`, when it has one.
pub fn of(version: &super::LiveVersion, target: &str) -> Option<Record> {
    version.tags.get(&tag_key(target)).map(|v| Record::parse(v))
}

/// `s` cut to [`MAX_FIELD`] characters (an ellipsis marks the cut).
fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_FIELD {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_FIELD - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            passing_since: Some("2026-03-01T10:00:10Z".into()),
            rounds: 2,
            checks: vec![CheckRecord {
                check: "http POST http://scoring/invocations".into(),
                ok: true,
                observed: "status 200, condition true".into(),
            }],
            ..Record::start("2026-03-01T10:00:00Z".into(), Some("abc123".into()))
        }
    }

    #[test]
    fn what_on_failure_did_reads_back_from_then() {
        let mut r = record();
        assert!(!r.rolled_back() && !r.held());
        r.then = Some(rolled_back_then(6));
        assert_eq!(r.then.as_deref(), Some("rolled back to version 6, held"));
        assert!(r.rolled_back() && r.held());
        r.then = Some(held_then(7));
        assert!(!r.rolled_back() && r.held());
        r.then = Some("not rolled back: no previous holder".into());
        assert!(!r.rolled_back() && !r.held());
    }

    #[test]
    fn a_record_renders_canonically_and_reads_back() {
        let r = record();
        assert_eq!(
            r.render(),
            r#"{"state":"verifying","since":"2026-03-01T10:00:00Z","at":"2026-03-01T10:00:00Z","revision":"abc123","passingSince":"2026-03-01T10:00:10Z","rounds":2,"checks":[{"check":"http POST http://scoring/invocations","ok":true,"observed":"status 200, condition true"}]}"#
        );
        assert_eq!(Record::parse(&r.render()), r);
        assert_eq!(
            r.describe(),
            "verifying since 2026-03-01T10:00:00Z, passing since 2026-03-01T10:00:10Z"
        );
        assert_eq!(tag_key("Staging"), "modelsync.verified.Staging");
    }

    #[test]
    fn an_unreadable_record_is_never_a_passed_one() {
        let r = Record::parse("verified");
        assert_eq!(r.state, State::Unknown);
        assert_eq!(r.verified_at(), None);
        assert!(r.describe().starts_with("in an unknown state: unreadable"));
        let newer = Record::parse(r#"{"state":"paused","since":"x"}"#);
        assert_eq!(newer.state, State::Unknown);
    }

    #[test]
    fn only_a_verified_record_has_a_verified_time() {
        let mut r = record();
        r.finished = Some("2026-03-01T10:02:10Z".into());
        assert_eq!(r.verified_at(), None, "still verifying");
        r.state = State::Verified;
        assert_eq!(r.verified_at(), Some("2026-03-01T10:02:10Z"));
        assert_eq!(r.describe(), "verified at 2026-03-01T10:02:10Z");
        r.state = State::Failed;
        r.reason = Some("status 500".into());
        r.then = Some("rolled back to version 1, held".into());
        assert_eq!(
            r.describe(),
            "failed at 2026-03-01T10:02:10Z: status 500 (rolled back to version 1, held)"
        );
    }

    #[test]
    fn a_record_stays_bounded_whatever_the_checks_saw() {
        let mut r = record();
        r.checks = (0..200)
            .map(|i| CheckRecord {
                check: format!("check {i} {}", "x".repeat(1000)),
                ok: false,
                observed: "y".repeat(10_000),
            })
            .collect();
        r.reason = Some("z".repeat(10_000));
        let text = r.render();
        assert!(text.len() <= MAX_LEN, "{}", text.len());
        let back = Record::parse(&text);
        assert!(!back.checks.is_empty(), "some checks are kept");
        assert!(back.checks[0].observed.ends_with('…'));
        assert!(back.reason.expect("kept").chars().count() <= MAX_FIELD);
    }
}

//! A model's `verify:` as validated: what runs after a version moved into
//! a stage or alias (issue 19; `docs/after-the-move.md`). Plain data; the
//! state machine that runs it is `plan::verify`, its I/O `apply::verify`.

use std::time::Duration;

use super::Dataset;

/// How often checks run when `every` is not written.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(10);
/// When a verification gives up when `timeout` is not written.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The verification of one stage or alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub checks: Vec<Check>,
    /// The probe interval.
    pub every: Duration,
    /// How long every check must keep passing (zero: one passing round).
    pub for_: Duration,
    /// Not verified this long after the move: failed.
    pub timeout: Duration,
    pub on_failure: OnFailure,
}

/// What a failed verification does to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Hold the target on the failed version (the default).
    Hold,
    /// Move the target back to its previous holder, and hold it.
    Rollback,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Hold => "hold",
            OnFailure::Rollback => "rollback",
        }
    }
}

/// One check of a round.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Http(HttpCheck),
    /// A metric logged against the version after the move (its logged
    /// model's metrics with a later timestamp), within bounds.
    Metric {
        metric: String,
        at_least: Option<f64>,
        at_most: Option<f64>,
        dataset: Option<Dataset>,
    },
}

/// An HTTP request and what its answer must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// As written: `{model}`, `{version}`, `{target}` not yet substituted.
    pub url: String,
    pub method: String,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The status the answer must have.
    pub status: u16,
    /// A CEL condition over the answer (checked when validated).
    pub condition: Option<String>,
}

impl Check {
    /// The check as people read it: `http POST http://…/invocations`,
    /// `metric online_auc >= 0.8 on dataset traffic`.
    pub fn describe(&self) -> String {
        match self {
            Check::Http(h) => format!("http {} {}", h.method, h.url),
            Check::Metric {
                metric,
                at_least,
                at_most,
                dataset,
            } => {
                let mut s = format!("metric {metric}");
                if let Some(lo) = at_least {
                    s.push_str(&format!(" >= {lo}"));
                }
                if let Some(hi) = at_most {
                    s.push_str(&format!(" <= {hi}"));
                }
                if let Some(d) = dataset {
                    s.push_str(&format!(" on dataset {d}"));
                }
                s
            }
        }
    }
}

//! What one pass ended with, and the verdict the CLI turns into an exit
//! code.

use crate::apply::ApplyReport;
use crate::manifest::{DesiredState, Diagnostic};
use crate::plan::Plan;
use crate::registry::{RegistryError, RequestStats};
use crate::state::LiveState;

/// Why a pass stopped before its end.
#[derive(Debug)]
pub enum Stop {
    /// The manifests are invalid; nothing was read or written.
    Invalid(Vec<Diagnostic>),
    /// A targeted pass's selection cannot be made (`--model` matches no
    /// declared model), or a saved plan was given targeting other than
    /// its own (a targeted plan applied as a full one, or the reverse);
    /// nothing was read or written. Why, in one sentence.
    Targets(String),
    /// A saved plan no longer matches the registry; nothing was written.
    Stale(Vec<String>),
    /// A saved plan was made for another registry; nothing was written.
    OtherRegistry { planned: String, here: String },
    /// The registry could not be read or the lease not taken.
    Registry(RegistryError),
    /// A shutdown was asked for (SIGTERM/SIGINT) before anything was
    /// written; with writes under way, the report tells what was skipped.
    Cancelled,
    /// The applier lease could not be renewed, was released by force or
    /// was taken over while applying (why: `lost the applier lease: …`):
    /// nothing was written once that was known; the report tells what was
    /// applied before and what was skipped.
    LostLease(String),
    /// An elected daemon leader stopped being sure it leads (its renewal
    /// deadline passed, it stepped down, or a model carried a newer epoch
    /// of its own namespace; why: `no longer the elected leader…`): nothing
    /// further was written.
    LostLeadership(String),
    /// The plan would show the value of a secret modelsync was given (a
    /// value the registry holds, or one the manifests' text hid): it was
    /// not kept, shown, saved or applied; nothing was written.
    Leak(crate::secret::Leak),
}

/// Everything one pass did and saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The registry's URI (no credentials); empty when it was not opened.
    pub registry: String,
    /// Requests the pass made.
    pub stats: RequestStats,
    /// The validated manifests (absent when invalid).
    pub desired: Option<DesiredState>,
    /// The registry as read for the plan that was (or would be) executed.
    pub observed: Option<LiveState>,
    /// After applying: the registry as read back to verify (absent when
    /// nothing was written).
    pub verified: Option<LiveState>,
    /// The plan the pass settled on.
    pub plan: Option<Plan>,
    /// What the executor did; `None` when nothing was executed.
    pub report: Option<ApplyReport>,
    /// After applying: what a re-read still finds to do (a write that did
    /// not take). Empty when converged or not applied.
    pub pending: Vec<String>,
    /// Set when the pass stopped early.
    pub stop: Option<Stop>,
    /// A shutdown was asked for while the executor ran: the model in
    /// flight finished, none after it started. (One asked for before any
    /// write stops the pass instead: [`Stop::Cancelled`].)
    pub shutdown_while_applying: bool,
    /// With `Pass::locate`: where the bytes behind the declared models'
    /// aliases are, by model and version.
    pub locations: crate::state::artifacts::Locations,
    /// The verifications the pass's moves started, as far as the pass
    /// followed them (finished when it waited; `verifying` otherwise).
    pub verifications: Vec<crate::apply::verify::Running>,
    /// The outputs of `modelsync.toml` (`Pass::outputs`): what each one
    /// wrote, would write (planning), or why it could not.
    pub outputs: Vec<crate::outputs::Report>,
}

/// The outcome reduced to what the user must know first; the CLI maps it
/// to an exit code, the daemon to metrics and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do, or everything applied and verified.
    Ok,
    /// Planned only, and there are changes.
    Changes,
    /// Invalid manifests, a plan with errors, a failed action, a registry
    /// that did not converge, a plan for another registry, a registry
    /// error other than unreachable.
    Error,
    /// The registry could not be reached.
    Unreachable,
    /// The saved plan is stale.
    Stale,
    /// A gate blocked a move (everything else applied).
    Blocked,
    /// Shut down before finishing: models not started were skipped.
    Interrupted,
    /// The term writes were made under — the applier lease, or an elected
    /// leader's leadership (`crate::term`) — ended while applying: the rest
    /// was skipped.
    LostTerm,
    /// A verification after a move failed (everything else applied).
    VerificationFailed,
}

impl Outcome {
    /// The verdict: errors first, then stale/unreachable, interrupted,
    /// blocked, changes, ok.
    pub fn verdict(&self) -> Verdict {
        match &self.stop {
            Some(
                Stop::Invalid(_) | Stop::Targets(_) | Stop::OtherRegistry { .. } | Stop::Leak(_),
            ) => {
                return Verdict::Error;
            }
            Some(Stop::Stale(_)) => return Verdict::Stale,
            Some(Stop::Registry(e)) if e.is_unreachable() => return Verdict::Unreachable,
            Some(Stop::Registry(_)) => return Verdict::Error,
            Some(Stop::Cancelled) => return Verdict::Interrupted,
            Some(Stop::LostLease(_) | Stop::LostLeadership(_)) => return Verdict::LostTerm,
            None => {}
        }
        let plan_errors = self.plan.as_ref().is_some_and(Plan::has_errors);
        let report = self.report.as_ref();
        if plan_errors || report.is_some_and(|r| r.failed() > 0) || !self.pending.is_empty() {
            return Verdict::Error;
        }
        // An output not written: reported, the registry moves stay.
        if self.outputs.iter().any(|o| o.failed().is_some()) {
            return Verdict::Error;
        }
        if self.verification_failed() {
            return Verdict::VerificationFailed;
        }
        // A shutdown during the apply: the model in flight finished, none
        // after it started, and nothing was read back — not a success, even
        // when the last model was the one in flight.
        if self.shutdown_while_applying && report.is_some() {
            return Verdict::Interrupted;
        }
        let blocked = match report {
            Some(r) => r.blocked() > 0,
            None => self.plan.as_ref().is_some_and(Plan::has_blocked),
        };
        if blocked {
            Verdict::Blocked
        } else if report.is_none()
            && (self.plan.as_ref().is_some_and(|p| !p.is_empty())
                || (self.outputs.iter()).any(|o| o.result == crate::outputs::Written::Planned))
        {
            Verdict::Changes
        } else {
            Verdict::Ok
        }
    }

    /// True when a verification this pass followed failed.
    pub fn verification_failed(&self) -> bool {
        self.verifications
            .iter()
            .any(|r| r.record.state == crate::state::verification::State::Failed)
    }

    /// One line saying why the pass failed, for logs and `/status`; `None`
    /// when it did not fail.
    pub fn error_message(&self) -> Option<String> {
        match &self.stop {
            Some(Stop::Invalid(d)) => {
                return Some(format!("{} problem(s) in the manifests", d.len()));
            }
            Some(Stop::Targets(why)) => {
                return Some(format!("{why}; nothing was read or written"));
            }
            Some(Stop::Stale(lines)) => {
                return Some(format!(
                    "the saved plan is stale ({} difference(s)): {}",
                    lines.len(),
                    lines.join("; ")
                ));
            }
            Some(Stop::OtherRegistry { planned, here }) => {
                return Some(format!("the plan was made against {planned}, not {here}"));
            }
            Some(Stop::Registry(e)) => return Some(format!("{e}; nothing was applied")),
            Some(Stop::Leak(leak)) => {
                return Some(format!(
                    "refused: the plan would show {leak}; nothing was shown, saved or written"
                ));
            }
            Some(Stop::Cancelled) => {
                return Some("interrupted before applying: nothing was written".into());
            }
            Some(Stop::LostLease(why)) => {
                let (applied, skipped) = self.applied_skipped();
                return Some(format!(
                    "{why}; stopped writing: {applied} action(s) applied, {skipped} skipped. Run apply again."
                ));
            }
            Some(Stop::LostLeadership(why)) => {
                let (applied, skipped) = self.applied_skipped();
                return Some(format!(
                    "{why}; stopped writing: {applied} action(s) applied, {skipped} skipped; the leader reconciles"
                ));
            }
            None => {}
        }
        if let Some(plan) = &self.plan
            && plan.has_errors()
        {
            return Some(format!("{}; nothing was applied", plan.errors().join("; ")));
        }
        if let Some(r) = &self.report
            && r.failed() > 0
        {
            return Some(r.summary());
        }
        if !self.pending.is_empty() {
            return Some(format!(
                "the registry does not match the manifests after apply ({} action(s) still pending): {}",
                self.pending.len(),
                self.pending.join("; ")
            ));
        }
        let failed: Vec<String> = (self.outputs.iter())
            .filter(|o| o.failed().is_some())
            .map(ToString::to_string)
            .collect();
        if !failed.is_empty() {
            return Some(format!(
                "{}; the registry's changes stay applied",
                failed.join("; ")
            ));
        }
        None
    }
}

impl Outcome {
    fn applied_skipped(&self) -> (usize, usize) {
        self.report
            .as_ref()
            .map_or((0, 0), |r| (r.applied(), r.skipped()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{ActionResult, ApplyReport, Outcome as ActionOutcome};

    #[test]
    fn a_shutdown_during_the_apply_is_never_a_success() {
        let applied = ApplyReport {
            results: vec![ActionResult {
                object: "m".into(),
                action: "create model".into(),
                kind: "create_model",
                outcome: ActionOutcome::Applied,
            }],
        };
        let mut out = Outcome {
            report: Some(applied),
            shutdown_while_applying: true,
            ..Outcome::default()
        };
        assert_eq!(
            out.verdict(),
            Verdict::Interrupted,
            "the last model was in flight"
        );
        out.shutdown_while_applying = false;
        assert_eq!(out.verdict(), Verdict::Ok);
    }

    #[test]
    fn a_lost_lease_or_leadership_is_one_message_with_its_cause() {
        let skipped = ActionResult {
            object: "m".into(),
            action: "create model".into(),
            kind: "create_model",
            outcome: ActionOutcome::Skipped("lost the applier lease: …".into()),
        };
        let mut out = Outcome {
            report: Some(ApplyReport {
                results: vec![skipped],
            }),
            stop: Some(Stop::LostLease(
                "lost the applier lease: it was released while this apply ran".into(),
            )),
            ..Outcome::default()
        };
        assert_eq!(out.verdict(), Verdict::LostTerm);
        let msg = out.error_message().expect("a message");
        assert_eq!(
            msg,
            "lost the applier lease: it was released while this apply ran; stopped writing: \
             0 action(s) applied, 1 skipped. Run apply again."
        );
        out.stop = Some(Stop::LostLeadership(
            "no longer the elected leader: model \"m\" carries epoch 9".into(),
        ));
        let msg = out.error_message().expect("a message");
        assert!(
            msg.starts_with("no longer the elected leader: model \"m\" carries epoch 9;"),
            "{msg}"
        );
        assert!(!msg.contains("  "), "{msg}");
    }
}

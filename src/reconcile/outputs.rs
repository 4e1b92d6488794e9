//! The outputs step of the pass (issue 20): after the registry writes
//! (and their read-back), every `[outputs]` of `modelsync.toml` is brought
//! in line with what the aliases and stages its markers name now point at
//! — one commit per output and pass, pushed (`mode = "commit"`) or on a
//! pull request (`mode = "pull-request"`). Planning, the same step says
//! what it would change, as of after the plan's moves.
//!
//! The trigger is the state, not the action: a marked field whose value
//! differs from the version its reference stands for is rewritten, so any
//! move (a rollback too, or a pass after a failed push) is covered, and a
//! pass that finds every field up to date writes nothing. A push rejected
//! because the branch moved is retried on the new head (fetched again, the
//! markers applied again), [`ATTEMPTS`] times at most. A failure is
//! reported in the pass's outcome (exit 1 for `apply`) and never undoes a
//! registry move. The git work is `source/outputs.rs`, the markers
//! `outputs::markers`, which version a reference stands for
//! `plan::outputs`.

use std::collections::{BTreeMap, BTreeSet};

mod pull_request;

use super::{Mode, Outcome};
use crate::outputs::markers::{self, Rewritten};
use crate::outputs::{self, Change, Field, Reference, Report, Settings, Values, Written};
use crate::plan::outputs::{Behind, behind};
use crate::registry::{AnyRegistry, Registry};
use crate::source::outputs::{self as git, Branch, PushError};
use crate::state::artifacts::serving_uri;
use crate::state::{LiveState, tags};
use ssh_key::PrivateKey;

/// Pushes tried before giving up on a branch that keeps moving.
pub const ATTEMPTS: u32 = 5;

/// Every output of `settings`, written (`Mode::Apply`) or planned, from
/// what the pass read last.
pub async fn run(
    reg: &AnyRegistry,
    out: &Outcome,
    settings: &[Settings],
    mode: Mode,
) -> Vec<Report> {
    let mut reports = Vec::new();
    for s in settings {
        let report = one(reg, out, s, mode).await;
        match &report.result {
            Written::Failed { error } => {
                tracing::error!(output = %report.output, error = %error, "output not written")
            }
            _ => tracing::info!("{report}"),
        }
        reports.push(report);
    }
    reports
}

/// What the pass knows: the declared models, the registry as last read
/// and (planning) the plan whose moves are counted as done.
struct Known<'a> {
    reg: &'a AnyRegistry,
    desired: &'a crate::manifest::DesiredState,
    live: &'a LiveState,
    plan: Option<&'a crate::plan::Plan>,
}

/// Values by reference (`None`: leave its fields as they are).
type Found = BTreeMap<Reference, Result<Option<Values>, String>>;

async fn one(reg: &AnyRegistry, out: &Outcome, settings: &Settings, mode: Mode) -> Report {
    let mut report = Report {
        output: git::describe(settings),
        changes: Vec::new(),
        result: Written::Unchanged,
    };
    let (Some(desired), Some(live)) = (
        &out.desired,
        out.verified.as_ref().or(out.observed.as_ref()),
    ) else {
        return report;
    };
    let known = Known {
        reg,
        desired,
        live,
        plan: (mode == Mode::Plan).then_some(out.plan.as_ref()).flatten(),
    };
    report.result = match write(&known, settings, mode, &mut report.changes).await {
        Ok(w) => w,
        Err(error) => Written::Failed { error },
    };
    report
}

/// Fetch, rewrite, commit and push, again on a branch that moved.
async fn write(
    known: &Known<'_>,
    settings: &Settings,
    mode: Mode,
    changes: &mut Vec<Change>,
) -> Result<Written, String> {
    let key = match mode {
        Mode::Apply => git::signing_key()?,
        Mode::Plan => None,
    };
    let s = settings.clone();
    let mut branch = blocking(move || Branch::fetch(&s)).await?;
    let mut found = Found::new();
    for attempt in 1..=ATTEMPTS {
        let rewritten;
        (branch, rewritten) = rewrite(branch, known, &mut found).await?;
        *changes = rewritten
            .iter()
            .flat_map(|(_, r)| r.changes.clone())
            .collect();
        refuse_errors(&rewritten)?;
        if changes.is_empty() {
            return Ok(Written::Unchanged);
        }
        if mode == Mode::Plan {
            return Ok(Written::Planned);
        }
        let message = outputs::commit_message(changes);
        refuse_leaks(&message, changes)?;
        let commit;
        (branch, commit) = commit_on(branch, rewritten, message, key.clone()).await?;
        if settings.mode == outputs::Mode::PullRequest {
            return pull_request::open_or_update(branch, settings, &commit, changes).await;
        }
        let pushed;
        (branch, pushed) = push(branch, settings.branch.clone(), attempt).await?;
        if pushed {
            return Ok(Written::Committed {
                commit,
                attempts: attempt,
            });
        }
    }
    Err(format!(
        "the branch {} kept moving: gave up after {ATTEMPTS} pushes",
        settings.branch
    ))
}

/// The branch's marked files, rewritten.
async fn rewrite(
    branch: Branch,
    known: &Known<'_>,
    found: &mut Found,
) -> Result<(Branch, Vec<(String, Rewritten)>), String> {
    let (branch, files) = blocking(move || {
        let files = branch.marked_files();
        files.map(|f| (branch, f))
    })
    .await?;
    Ok((branch, rewrite_all(known, &files, found).await))
}

/// Every error the rewrites met, at once.
fn refuse_errors(rewritten: &[(String, Rewritten)]) -> Result<(), String> {
    let errors: Vec<String> = rewritten
        .iter()
        .flat_map(|(_, r)| r.errors.clone())
        .collect();
    match errors.is_empty() {
        true => Ok(()),
        false => Err(errors.join("\n")),
    }
}

/// One commit of the files that changed on top of the branch's head; its id.
async fn commit_on(
    branch: Branch,
    rewritten: Vec<(String, Rewritten)>,
    message: String,
    key: Option<PrivateKey>,
) -> Result<(Branch, String), String> {
    let new: Vec<(String, String)> = rewritten
        .into_iter()
        .filter(|(_, r)| !r.changes.is_empty())
        .map(|(path, r)| (path, r.text))
        .collect();
    let (branch, commit) = blocking(move || {
        let id = branch.commit(&new, &message, key.as_ref());
        Ok::<_, String>((branch, id))
    })
    .await?;
    Ok((branch, commit?.to_string()))
}

/// Pushes the commit to `target`: `true` when pushed; `false` when the
/// branch moved meanwhile (its new head fetched, to rewrite again).
async fn push(branch: Branch, target: String, attempt: u32) -> Result<(Branch, bool), String> {
    let (mut branch, pushed) = blocking(move || {
        let pushed = branch.push(&target, false);
        Ok::<_, String>((branch, pushed))
    })
    .await?;
    match pushed {
        Ok(()) => Ok((branch, true)),
        Err(PushError::Other(why)) => Err(why),
        Err(PushError::Moved(why)) => {
            tracing::warn!(attempt, error = %why, "the outputs branch moved meanwhile: applying the markers again on its new head");
            let (branch, refetched) = blocking(move || {
                let r = branch.refetch();
                Ok::<_, String>((branch, r))
            })
            .await?;
            refetched?;
            Ok((branch, false))
        }
    }
}

/// Every marked file rewritten with the values its references stand for
/// (found once per reference and pass).
async fn rewrite_all(
    known: &Known<'_>,
    files: &[(String, String)],
    found: &mut Found,
) -> Vec<(String, Rewritten)> {
    let mut needed: BTreeMap<Reference, BTreeSet<Field>> = BTreeMap::new();
    for (path, text) in files {
        for m in markers::find(path, text).0 {
            needed.entry(m.reference).or_default().insert(m.field);
        }
    }
    for (r, fields) in needed {
        if let std::collections::btree_map::Entry::Vacant(slot) = found.entry(r) {
            let values = values(known, slot.key(), &fields).await;
            slot.insert(values);
        }
    }
    files
        .iter()
        .map(|(path, text)| {
            let lookup = |r: &Reference, f: Field| match found.get(r) {
                Some(Ok(Some(v))) => v
                    .get(&f)
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| format!("{r} has no {}", f.as_str())),
                Some(Ok(None)) | None => Ok(None),
                Some(Err(why)) => Err(why.clone()),
            };
            (path.clone(), markers::rewrite(path, text, &lookup))
        })
        .collect()
}

/// The values `r` stands for (the fields in `fields` that need the
/// version's files located or read are looked up only when asked for).
async fn values(
    known: &Known<'_>,
    r: &Reference,
    fields: &BTreeSet<Field>,
) -> Result<Option<Values>, String> {
    if !known.desired.models.contains_key(&r.model) {
        if known.desired.targets.is_some() {
            return Ok(None);
        }
        return Err(format!(
            "model {:?} is not declared in the manifests",
            r.model
        ));
    }
    let n = match behind(known.live, known.plan, r)? {
        Behind::Version(n) => n,
        Behind::New(handle) => {
            let later = format!("(the version this plan registers: {handle})");
            return Ok(Some(
                Field::ALL.iter().map(|f| (*f, later.clone())).collect(),
            ));
        }
    };
    let version = known
        .live
        .models
        .get(&r.model)
        .and_then(|m| m.versions.get(&n))
        .ok_or_else(|| format!("version {n} of {:?} was not read", r.model))?;
    let mut v = outputs::plain_values(version);
    let failed = |e: crate::registry::RegistryError| format!("{r} (version {n}): {e}");
    if fields.contains(&Field::Uri) {
        let location = known
            .reg
            .locate_version(&r.model, version)
            .await
            .map_err(failed)?;
        let uri = serving_uri(&location).map_err(|why| {
            format!("{r} (version {n}) cannot be handed to a model server: {why}")
        })?;
        v.insert(Field::Uri, uri);
    }
    if fields.contains(&Field::Digest) {
        let digest = match version.tags.get(tags::DIGEST) {
            Some(d) => d.clone(),
            None => {
                let tree = known
                    .reg
                    .resolve_version(&r.model, version)
                    .await
                    .map_err(failed)?;
                tree.tree.digest
            }
        };
        v.insert(Field::Digest, digest);
    }
    Ok(Some(v))
}

/// Refuses a commit whose message or written values would hold a secret.
fn refuse_leaks(message: &str, changes: &[Change]) -> Result<(), String> {
    let values: Vec<&str> = changes.iter().map(|c| c.new.as_str()).collect();
    let published = format!("{message}\n{}", values.join("\n"));
    crate::secret::check(&published)
        .map_err(|leak| format!("refused to commit: the change would publish {leak}"))
}

/// Runs blocking git work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("the git work stopped: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_that_would_publish_a_secret_is_refused_naming_the_variable_only() {
        let value = "outputs-leak-test-9f8e7d6c5b4a";
        let _secret = crate::secret::Secret::named("OUTPUTS_TEST_TOKEN", value);
        let change = Change {
            file: "kserve/isvc.yaml".into(),
            line: 3,
            marker: "m@champion:uri".into(),
            old: "s3://a".into(),
            new: format!("s3://b/{value}"),
        };
        let message = outputs::commit_message(std::slice::from_ref(&change));
        let why = refuse_leaks(&message, &[change]).unwrap_err();
        assert!(why.contains("OUTPUTS_TEST_TOKEN"), "{why}");
        assert!(!why.contains(value), "{why}");
        let clean = Change {
            file: "kserve/isvc.yaml".into(),
            line: 3,
            marker: "m@champion:uri".into(),
            old: "s3://a".into(),
            new: "s3://b".into(),
        };
        let message = outputs::commit_message(std::slice::from_ref(&clean));
        assert_eq!(refuse_leaks(&message, &[clean]), Ok(()));
    }
}

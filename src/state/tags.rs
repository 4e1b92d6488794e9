//! Tag keys modelsync writes on registry objects: vocabulary shared by the
//! planner (which reads them), the applier and the registries (which write
//! and search them), and `history` (which reports them).

/// Every tag modelsync writes starts with this (`export` leaves them out).
pub const PREFIX: &str = "modelsync.";
/// On a version: the source as declared in the manifest (how a version
/// registered from `runs:/...` is recognised after MLflow resolved it).
pub const SOURCE: &str = "modelsync.source";
/// On a version: the revision (git commit) of the last move.
pub const REVISION: &str = "modelsync.revision";
/// On a version: `modelsync.promoted-at.<stage-or-alias>`, one tag per
/// move: a [`Stamp`] (`<RFC 3339>[ previous=<n>][ approved-by=<p>,…][
/// rollback][ break-glass][ by="<who>"][ reason="<why>"][ revision=<rev>]`).
pub const PROMOTED_AT_PREFIX: &str = "modelsync.promoted-at.";
/// On a version: `modelsync.previous.<stage-or-alias>` (replaced version).
/// Written by releases before the one-tag [`Stamp`]; still read.
pub const PREVIOUS_PREFIX: &str = "modelsync.previous.";
/// On a version: the digest of its bytes (`sha256:<hex>`, see
/// [`super::digest`]), recorded when modelsync registers or first moves
/// it; the `digest: unchanged` gate compares the bytes with it, and a
/// signed approval names it when the version has one.
pub const DIGEST: &str = "modelsync.digest";
/// On a version, beside [`DIGEST`]: the listing that digest is the sha256
/// of (one `<sha256> <size> <path>` line per file), so that a changed file
/// can be named. Left out when longer than a tag value may be.
pub const DIGEST_FILES: &str = "modelsync.digest.files";
/// On a model: JSON inventory of the stages and aliases modelsync set.
pub const MANAGED: &str = "modelsync.managed";
/// On a model: the grants modelsync made on it (`kind: AccessPolicy`), the
/// policies that declared them, and when and from which revision it last
/// changed them (JSON, `state::access::Record`).
pub const ACCESS: &str = "modelsync.access";
/// On a model: the fencing token of the elected daemon leader that last
/// wrote it, `<epoch>@<engine>/<incarnation>/<election>` (a plain number
/// from releases before namespaces); a leader never writes a model carrying
/// a newer epoch of its own namespace (`term::fence`).
pub const EPOCH: &str = "modelsync.epoch";
/// On a version: `modelsync.approval.<stage-or-alias>.<principal>`, a
/// signed approval or rejection (`manifest::approval`'s record and
/// `tag_key`). Every tag under this prefix is read; only its signature
/// makes it count.
pub const APPROVAL_PREFIX: &str = "modelsync.approval.";
/// On a version: `modelsync.verified.<stage-or-alias>`, its verification
/// after a move into that target (`state::verification::Record`, JSON).
pub const VERIFIED_PREFIX: &str = "modelsync.verified.";
/// On a model: `modelsync.hold.<stage-or-alias>`, a hold pinning that
/// target to a version (`state::hold::Hold`, JSON).
pub const HOLD_PREFIX: &str = "modelsync.hold.";
/// On the freeze model (MLflow): the freeze (`state::hold::Freeze`, JSON).
pub const FREEZE: &str = "modelsync.freeze";

/// On the lease model: the lease's tags start with this.
pub const LEASE_PREFIX: &str = "modelsync.lease.";
/// On the lease model: who holds the lease (`host:pid:nonce`).
pub const LEASE_HOLDER: &str = "modelsync.lease.holder";
/// On the lease model: when the lease expires, ms since the epoch (`0`:
/// released).
pub const LEASE_EXPIRES: &str = "modelsync.lease.expires";
/// On the lease model: when the holder took the lease, ms since the epoch.
pub const LEASE_STARTED: &str = "modelsync.lease.started";

/// The value of a `modelsync.promoted-at.<target>` tag: when the move was
/// made and, when known, the version it replaced and the manifests'
/// revision — one tag per move. A bare RFC 3339 time (older releases, which
/// wrote [`PREVIOUS_PREFIX`] and [`REVISION`] tags beside it) parses too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// RFC 3339.
    pub at: String,
    pub previous: Option<u64>,
    /// The principals whose signed approvals the move's gates counted.
    pub approved_by: Vec<String>,
    /// The move was a rollback (`modelsync rollback`, a verification's
    /// `onFailure: rollback`), not a move the manifests declared.
    pub rollback: bool,
    /// The move went through a window or a freeze by `--break-glass`.
    pub break_glass: bool,
    /// Who made a rollback or broke the glass (`state::hold::actor`).
    pub by: Option<String>,
    /// Why, as they said (`--reason`).
    pub reason: Option<String>,
    pub revision: Option<String>,
}

const PREVIOUS_FIELD: &str = "previous=";
const APPROVED_BY_FIELD: &str = "approved-by=";
const ROLLBACK_FIELD: &str = "rollback";
const BREAK_GLASS_FIELD: &str = "break-glass";
const BY_FIELD: &str = "by=";
const REASON_FIELD: &str = "reason=";
const REVISION_FIELD: &str = "revision=";

impl Stamp {
    /// A stamp of a move at `at` with nothing else recorded.
    pub fn at(at: String) -> Stamp {
        Stamp {
            at,
            previous: None,
            approved_by: Vec::new(),
            rollback: false,
            break_glass: false,
            by: None,
            reason: None,
            revision: None,
        }
    }

    /// `<at>[ previous=<n>][ approved-by=<p>,…][ rollback][ break-glass][
    /// by="<who>"][ reason="<why>"][ revision=<rev>]` (who and why as JSON
    /// strings; the revision last: it may hold spaces; principals hold no
    /// spaces or commas).
    pub fn render(&self) -> String {
        let mut out = self.at.clone();
        if let Some(p) = self.previous {
            out.push_str(&format!(" {PREVIOUS_FIELD}{p}"));
        }
        if !self.approved_by.is_empty() {
            out.push_str(&format!(
                " {APPROVED_BY_FIELD}{}",
                self.approved_by.join(",")
            ));
        }
        if self.rollback {
            out.push_str(&format!(" {ROLLBACK_FIELD}"));
        }
        if self.break_glass {
            out.push_str(&format!(" {BREAK_GLASS_FIELD}"));
        }
        for (field, value) in [(BY_FIELD, &self.by), (REASON_FIELD, &self.reason)] {
            if let Some(v) = value {
                let quoted = serde_json::to_string(v).expect("a string serializes");
                out.push_str(&format!(" {field}{quoted}"));
            }
        }
        if let Some(r) = &self.revision {
            out.push_str(&format!(" {REVISION_FIELD}{r}"));
        }
        out
    }

    /// Reads a rendered stamp (or a bare time).
    pub fn parse(value: &str) -> Stamp {
        let (at, mut rest) = value.split_once(' ').unwrap_or((value, ""));
        let mut stamp = Stamp::at(at.to_string());
        if let Some(r) = rest.strip_prefix(PREVIOUS_FIELD) {
            let (n, more) = r.split_once(' ').unwrap_or((r, ""));
            stamp.previous = n.parse().ok();
            rest = more;
        }
        if let Some(r) = rest.strip_prefix(APPROVED_BY_FIELD) {
            let (names, more) = r.split_once(' ').unwrap_or((r, ""));
            stamp.approved_by = names.split(',').map(str::to_string).collect();
            rest = more;
        }
        for (field, flag) in [
            (ROLLBACK_FIELD, &mut stamp.rollback),
            (BREAK_GLASS_FIELD, &mut stamp.break_glass),
        ] {
            if rest == field || rest.starts_with(&format!("{field} ")) {
                *flag = true;
                rest = rest[field.len()..].trim_start_matches(' ');
            }
        }
        for (field, value) in [(BY_FIELD, &mut stamp.by), (REASON_FIELD, &mut stamp.reason)] {
            if let Some((text, more)) = rest.strip_prefix(field).and_then(json_string) {
                *value = Some(text);
                rest = more.trim_start_matches(' ');
            }
        }
        if let Some(r) = rest.strip_prefix(REVISION_FIELD) {
            stamp.revision = Some(r.to_string());
        }
        stamp
    }
}

/// A JSON string at the start of `s`, and what follows it.
fn json_string(s: &str) -> Option<(String, &str)> {
    let mut de = serde_json::Deserializer::from_str(s).into_iter::<String>();
    let text = de.next()?.ok()?;
    Some((text, &s[de.byte_offset()..]))
}

/// On a copied version and its run: the copy's lineage
/// (`registry/model/version/model-id/digest`, see `state::CopySource`).
pub const COPY_LINEAGE: &str = "modelsync.copy.lineage";
/// On a copied version: `registry/model/version` it was copied from.
pub const COPY_OF: &str = "modelsync.copy.of";
/// On a copy's run: the logged model (MLflow 3) the files go to.
pub const COPY_MODEL_ID: &str = "modelsync.copy.model-id";
/// On a copy's run: `true` once every file is uploaded and verified.
pub const COPY_COMPLETE: &str = "modelsync.copy.complete";
/// On an experiment modelsync created to hold copied runs.
pub const COPY_EXPERIMENT: &str = "modelsync.copy.experiment";

/// The tag MLflow marks a prompt (its registered model and each version)
/// with, `true`.
pub const MLFLOW_IS_PROMPT: &str = "mlflow.prompt.is_prompt";
/// The prompt-version tag holding the template.
pub const MLFLOW_PROMPT_TEXT: &str = "mlflow.prompt.text";

/// True when a registered model's tags mark it as a prompt.
pub fn is_prompt(tags: &super::SmallMap<String, String>) -> bool {
    tags.get(MLFLOW_IS_PROMPT)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_bare_times_parse() {
        let at = || Stamp::at("2026-01-02T03:04:05Z".into());
        for stamp in [
            at(),
            Stamp {
                previous: Some(3),
                revision: Some("abc def".into()),
                ..at()
            },
            Stamp {
                revision: Some("0123abcd".into()),
                ..at()
            },
            Stamp {
                previous: Some(1),
                approved_by: vec!["alice@example.com".into(), "bob".into()],
                revision: Some("abc def".into()),
                ..at()
            },
            Stamp {
                previous: Some(4),
                rollback: true,
                by: Some("alice@ci".into()),
                reason: Some("p99 \"doubled\" after revision=x".into()),
                ..at()
            },
            Stamp {
                previous: Some(2),
                approved_by: vec!["bob".into()],
                break_glass: true,
                by: Some("carol".into()),
                reason: Some("hotfix".into()),
                revision: Some("abc".into()),
                ..at()
            },
            Stamp {
                rollback: true,
                break_glass: true,
                ..at()
            },
        ] {
            assert_eq!(Stamp::parse(&stamp.render()), stamp, "{}", stamp.render());
        }
        assert_eq!(
            Stamp::parse("2026-01-02T03:04:05Z").at,
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(
            Stamp::parse("2026-01-02T03:04:05Z previous=7").render(),
            "2026-01-02T03:04:05Z previous=7"
        );
        assert_eq!(
            Stamp {
                previous: Some(4),
                rollback: true,
                by: Some("alice".into()),
                reason: Some("slow".into()),
                ..at()
            }
            .render(),
            "2026-01-02T03:04:05Z previous=4 rollback by=\"alice\" reason=\"slow\""
        );
    }

    #[test]
    fn every_key_is_under_the_prefix() {
        for key in [
            SOURCE,
            DIGEST,
            DIGEST_FILES,
            REVISION,
            PROMOTED_AT_PREFIX,
            PREVIOUS_PREFIX,
            MANAGED,
            ACCESS,
            EPOCH,
            LEASE_PREFIX,
            APPROVAL_PREFIX,
            VERIFIED_PREFIX,
            HOLD_PREFIX,
            FREEZE,
        ] {
            assert!(key.starts_with(PREFIX), "{key}");
        }
        assert!(LEASE_HOLDER.starts_with(LEASE_PREFIX));
        assert!(LEASE_EXPIRES.starts_with(LEASE_PREFIX));
        assert!(LEASE_STARTED.starts_with(LEASE_PREFIX));
    }
}

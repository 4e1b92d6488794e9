//! Signed approvals (`docs/approvals.md` documents this format for
//! people; keep the two in step): the canonical **statement** a person
//! signs, and the **record** that is stored — the statement followed by
//! its armoured SSH signature (`ssh-keygen -Y sign -n modelsync-approval`)
//! — in a version tag (`modelsync.approval.…`) or a file under
//! `approvals/` beside the manifests.
//!
//! A statement is UTF-8 text, LF line endings, ending in a newline: the
//! line `modelsync-approval v1`, then one `key: value` line per field, in
//! this order, the optional ones left out when absent:
//!
//! ```text
//! modelsync-approval v1
//! registry: https://mlflow.example.com#workspace=team-a
//! model: fraud-detector
//! target: Production
//! version: 7
//! source: s3://models/fraud/7
//! digest: sha256:…                    (optional)
//! decision: approve
//! principal: alice@example.com
//! comment: reviewed the eval report   (optional)
//! time: 2026-05-01T12:00:00Z
//! expires: 2026-05-31T12:00:00Z
//! ```
//!
//! The signature covers the statement's exact bytes, so nothing is
//! re-rendered to check it. Pure: text in, values out.

use std::fmt;

use super::GateTarget;
use crate::clock;
use crate::state::tags;

/// The SSH signature namespace approvals are signed in (`ssh-keygen -Y
/// sign -n modelsync-approval`).
pub const NAMESPACE: &str = "modelsync-approval";
/// The first line of every statement.
pub const HEADER: &str = "modelsync-approval v1";
/// The folder, in each manifests root, whose `*.approval` files are read.
pub const DIR: &str = "approvals";
/// The extension of approval files.
pub const EXTENSION: &str = "approval";
/// The longest record read (statement and signature), in bytes.
pub const MAX_RECORD: usize = 8 * 1024;
/// The longest comment.
pub const MAX_COMMENT: usize = 500;

const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const END: &str = "-----END SSH SIGNATURE-----";

/// What a statement says: approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// One signed statement's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The registry as modelsync prints it (`https://host`, with
    /// `#workspace=NAME` in a workspace; `file:PATH` for the embedded one).
    pub registry: String,
    pub model: String,
    pub target: GateTarget,
    pub version: u64,
    /// The version's source, as the registry holds it.
    pub source: String,
    /// The version's `modelsync.digest`, when it records one.
    pub digest: Option<String>,
    pub decision: Decision,
    /// Who signs: a principal of the approvers file.
    pub principal: String,
    pub comment: Option<String>,
    /// When it was signed, ms since the epoch.
    pub time_ms: i64,
    /// When it stops counting, ms since the epoch.
    pub expires_ms: i64,
}

/// Why a text is not a statement or a record: the 1-based line (of the
/// text given) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A stored approval: the statement's text and fields, and its armoured
/// SSH signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub statement: Statement,
    /// The statement's exact text (what was signed).
    pub signed: String,
    /// `-----BEGIN SSH SIGNATURE-----` … `-----END SSH SIGNATURE-----`.
    pub signature: String,
}

/// The fields in their order: (key, required).
const FIELDS: [(&str, bool); 11] = [
    ("registry", true),
    ("model", true),
    ("target", true),
    ("version", true),
    ("source", true),
    ("digest", false),
    ("decision", true),
    ("principal", true),
    ("comment", false),
    ("time", true),
    ("expires", true),
];

impl Statement {
    /// The canonical text: what is signed.
    pub fn render(&self) -> String {
        let mut out = format!("{HEADER}\n");
        let mut field = |k: &str, v: &str| out.push_str(&format!("{k}: {v}\n"));
        field("registry", &self.registry);
        field("model", &self.model);
        field("target", &self.target.to_string());
        field("version", &self.version.to_string());
        field("source", &self.source);
        if let Some(d) = &self.digest {
            field("digest", d);
        }
        field("decision", self.decision.as_str());
        field("principal", &self.principal);
        if let Some(c) = &self.comment {
            field("comment", c);
        }
        field("time", &clock::rfc3339_seconds(self.time_ms));
        field("expires", &clock::rfc3339_seconds(self.expires_ms));
        out
    }

    /// Reads a statement; the first problem, with its line.
    pub fn parse(text: &str) -> Result<Statement, Malformed> {
        let bad = |line: usize, message: String| Malformed { line, message };
        if text.contains('\r') {
            let line = text[..text.find('\r').unwrap_or(0)].matches('\n').count() + 1;
            return Err(bad(line, "use LF line endings, not CRLF".into()));
        }
        if !text.ends_with('\n') {
            let line = text.lines().count().max(1);
            return Err(bad(line, "the statement must end with a newline".into()));
        }
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, HEADER)) => {}
            _ => return Err(bad(1, format!("the first line must be {HEADER:?}"))),
        }
        let written: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once(": ").map(|(k, _)| k))
            .collect();
        let mut values: Vec<(&str, usize, &str)> = Vec::new();
        let mut next = 0;
        for (n, line) in lines {
            let (key, value) = split_field(line).map_err(|m| bad(n, m))?;
            let Some(at) = FIELDS.iter().position(|(k, _)| *k == key) else {
                return Err(bad(n, format!("unknown field {key:?}")));
            };
            if at < next {
                return Err(bad(n, order_message(key, &values)));
            }
            if let Some((missing, _)) = FIELDS[next..at].iter().find(|(_, req)| *req) {
                let message = if written.contains(missing) {
                    order_message(key, &values)
                } else {
                    format!("{missing} is missing (before {key})")
                };
                return Err(bad(n, message));
            }
            next = at + 1;
            values.push((key, n, value));
        }
        if let Some((missing, _)) = FIELDS[next..].iter().find(|(_, req)| *req) {
            return Err(bad(text.lines().count(), format!("{missing} is missing")));
        }
        Fields(values).statement()
    }
}

/// `key: value`, the value neither empty nor padded, no control
/// characters.
fn split_field(line: &str) -> Result<(&str, &str), String> {
    if let Some(c) = line.chars().find(|c| c.is_control()) {
        return Err(format!(
            "control character {c:?}: not allowed in a statement"
        ));
    }
    let (key, value) = line
        .split_once(": ")
        .ok_or_else(|| format!("expected \"key: value\", found {line:?}"))?;
    if value.is_empty() || value.trim() != value {
        return Err(format!(
            "{key}: the value must not be empty or start or end with spaces"
        ));
    }
    Ok((key, value))
}

fn order_message(key: &str, seen: &[(&str, usize, &str)]) -> String {
    if seen.iter().any(|(k, _, _)| *k == key) {
        format!("{key} is given twice")
    } else {
        let order: Vec<&str> = FIELDS.iter().map(|(k, _)| *k).collect();
        format!("{key} is out of order: the fields go {}", order.join(", "))
    }
}

/// The fields of a statement as written: (key, line, value).
struct Fields<'a>(Vec<(&'a str, usize, &'a str)>);

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<(usize, &str)> {
        self.0
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, n, v)| (*n, *v))
    }

    fn required(&self, key: &str) -> (usize, &str) {
        self.get(key).expect("required fields were checked")
    }

    fn statement(&self) -> Result<Statement, Malformed> {
        let bad = |line: usize, message: String| Malformed { line, message };
        let (n, target) = self.required("target");
        let target = canonical_target(target).map_err(|m| bad(n, m))?;
        let (n, version) = self.required("version");
        let version = version
            .parse::<u64>()
            .ok()
            .filter(|v| *v > 0 && !version.starts_with('0') && !version.starts_with('+'))
            .ok_or_else(|| bad(n, format!("version {version:?} is not a version number")))?;
        let (n, decision) = self.required("decision");
        let decision = match decision {
            "approve" => Decision::Approve,
            "reject" => Decision::Reject,
            other => return Err(bad(n, format!("decision {other:?}: approve or reject"))),
        };
        let (n, principal) = self.required("principal");
        if let Some(problem) = principal_problem(principal) {
            return Err(bad(n, problem));
        }
        if let Some((n, c)) = self.get("comment")
            && c.chars().count() > MAX_COMMENT
        {
            return Err(bad(n, format!("comment: at most {MAX_COMMENT} characters")));
        }
        let time = |key: &str| -> Result<i64, Malformed> {
            let (n, v) = self.required(key);
            clock::parse_rfc3339(v).ok_or_else(|| {
                bad(
                    n,
                    format!("{key} {v:?} is not an RFC 3339 time such as 2026-05-01T12:00:00Z"),
                )
            })
        };
        let (time_ms, expires_ms) = (time("time")?, time("expires")?);
        if expires_ms <= time_ms {
            let (n, _) = self.required("expires");
            return Err(bad(n, "expires must be later than time".into()));
        }
        Ok(Statement {
            registry: self.required("registry").1.to_string(),
            model: self.required("model").1.to_string(),
            target,
            version,
            source: self.required("source").1.to_string(),
            digest: self.get("digest").map(|(_, v)| v.to_string()),
            decision,
            principal: principal.to_string(),
            comment: self.get("comment").map(|(_, v)| v.to_string()),
            time_ms,
            expires_ms,
        })
    }
}

/// A target as written in a statement: a stage's own name (`Production`)
/// or `@` and an alias.
fn canonical_target(text: &str) -> Result<GateTarget, String> {
    let target = GateTarget::try_from(text.to_string())?;
    if target.to_string() != text {
        return Err(format!("target {text:?}: write it as {target}"));
    }
    Ok(target)
}

/// Why `principal` cannot name an approver, or `None`: not empty, no
/// spaces or commas (allowed_signers separates principals with them).
pub fn principal_problem(principal: &str) -> Option<String> {
    if principal.is_empty() {
        return Some("principal must not be empty".into());
    }
    if principal
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '"')
    {
        return Some(format!(
            "principal {principal:?}: no spaces, commas or quotes (as in allowed_signers)"
        ));
    }
    None
}

/// The tag key `modelsync approve` stores a principal's statement about
/// `target` under (`modelsync.approval.<stage-or-alias>.<principal>`): one
/// per principal and target, so a later statement replaces an earlier
/// one. A principal with characters tag keys do not allow (`@`, `+`, …)
/// is written with `_` instead and a short hash of the original, so two
/// principals never share a key.
pub fn tag_key(target: &GateTarget, principal: &str) -> String {
    let key = format!(
        "{}{}.{}",
        tags::APPROVAL_PREFIX,
        target.key(),
        safe_id(principal)
    );
    key.chars().take(crate::naming::MAX_TAG_KEY_LEN).collect()
}

/// The file `modelsync approve --out DIR` writes, relative to `DIR`:
/// `approvals/<model>/<stage-or-alias>/v<version>.<principal>.approval`.
pub fn file_name(statement: &Statement) -> String {
    format!(
        "{DIR}/{}/{}/v{}.{}.{EXTENSION}",
        statement.model,
        statement.target.key(),
        statement.version,
        safe_id(&statement.principal)
    )
}

/// `principal` with only `[A-Za-z0-9_.-]` (else `_`, and a hash of the
/// original).
fn safe_id(principal: &str) -> String {
    use sha2::{Digest, Sha256};
    let safe: String = principal
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' | '.' => c,
            _ => '_',
        })
        .collect();
    if safe == principal && !safe.starts_with('.') {
        return safe;
    }
    let hash = Sha256::digest(principal.as_bytes());
    let hex: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", safe.trim_start_matches('.'))
}

impl Record {
    /// The stored form: the statement, then the armoured signature.
    pub fn render(signed: &str, signature: &str) -> String {
        let mut out = format!("{signed}{}", signature.trim_end());
        out.push('\n');
        out
    }

    /// Reads a stored record: the statement, then the signature block
    /// (starting at a line `-----BEGIN SSH SIGNATURE-----`).
    pub fn parse(text: &str) -> Result<Record, Malformed> {
        if text.len() > MAX_RECORD {
            return Err(Malformed {
                line: 1,
                message: format!("larger than {MAX_RECORD} bytes"),
            });
        }
        let at = if text.starts_with(BEGIN) {
            Some(0)
        } else {
            text.find(&format!("\n{BEGIN}")).map(|i| i + 1)
        };
        let Some(at) = at.filter(|at| *at > 0) else {
            return Err(Malformed {
                line: text.lines().count().max(1),
                message: format!(
                    "no statement followed by a signature (a line {BEGIN} after the statement)"
                ),
            });
        };
        let (signed, signature) = text.split_at(at);
        if !signature.trim_end().ends_with(END) {
            return Err(Malformed {
                line: text.lines().count(),
                message: format!("the signature does not end with {END}"),
            });
        }
        let statement = Statement::parse(signed)?;
        Ok(Record {
            statement,
            signed: signed.to_string(),
            signature: signature.to_string(),
        })
    }

    /// Checks the signature as `ssh-keygen -Y verify -n modelsync-approval
    /// -I <principal>` does, against the approvers file.
    pub fn verify(
        &self,
        signers: &super::signers::AllowedSigners,
    ) -> Result<super::signers::Verified, super::signers::Refusal> {
        signers.verify(
            NAMESPACE,
            Some(&self.statement.principal),
            self.signed.as_bytes(),
            &self.signature,
        )
    }
}

#[cfg(test)]
mod tests;

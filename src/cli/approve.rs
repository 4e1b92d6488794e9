//! `modelsync approve` and `modelsync reject`: sign a statement about one
//! version and one stage or alias (`manifest::approval`), and store it — a
//! tag on the version (one of the commands that write outside the
//! executor: only this signed record, under `modelsync.approval.`), or
//! with `--out DIR` a file under `DIR/approvals/` for the manifests'
//! repository. `--print-statement` prints the statement for `ssh-keygen -Y
//! sign` instead. The registry is read for the version's source and
//! digest, which the statement binds.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use ssh_key::{HashAlg, LineEnding, PrivateKey};

use super::args::ApproveArgs;
use super::common::{self, print};
use super::{Exit, GlobalArgs};
use crate::manifest::approval::{self, Decision, Record, Statement};
use crate::manifest::signers::AllowedSigners;
use crate::manifest::{GateTarget, paths};
use crate::registry::Registry;
use crate::state::{LiveModel, LiveVersion, Stage, tags};

pub async fn run(g: &GlobalArgs, a: ApproveArgs, decision: Decision) -> anyhow::Result<Exit> {
    let target = target(&a)?;
    // Statements name whole seconds.
    let now_ms = crate::clock::EvalClock::from_env()?.now_ms() / 1000 * 1000;
    let stores_tag = a.out.is_none() && !a.print_statement;
    let reg = common::open_registry(g, stores_tag).await?;
    let model = common::existing_model(&reg, &a.model).await?;
    let version = pick(&model, a.version)?;
    let key = a.key.as_deref().map(load_key).transpose()?;
    let approvers = approvers_file(a.out.as_deref())?;
    let principal = match (&a.principal, &key) {
        (Some(p), _) => p.clone(),
        (None, Some(key)) => principal_of(key, approvers.as_ref())?,
        (None, None) => bail!("name the principal to sign as with --principal"),
    };
    let expires = i64::try_from(a.expires.as_secs()).unwrap_or(i64::MAX / 1000) * 1000;
    let statement = Statement {
        registry: reg.uri(),
        model: model.name.clone(),
        target,
        version: version.version,
        source: version.source.clone(),
        digest: version.tags.get(tags::DIGEST).cloned(),
        decision,
        principal,
        comment: a.comment.clone(),
        time_ms: now_ms,
        expires_ms: now_ms.saturating_add(expires),
    };
    let signed = canonical(&statement)?;
    let Some(key) = key else {
        print(&signed)?;
        return Ok(Exit::Ok);
    };
    let text = sign(&key, a.key.as_deref(), &signed, approvers.as_ref())?;
    let place = match &a.out {
        Some(dir) => write_file(dir, &statement, &text)?,
        None => store_tag(&reg, &statement, &text).await?,
    };
    print(&format!(
        "{} version {} of {} for {} as {}, until {}: {place}\n",
        match decision {
            Decision::Approve => "Approved",
            Decision::Reject => "Rejected",
        },
        statement.version,
        statement.model,
        statement.target,
        statement.principal,
        crate::clock::rfc3339_seconds(statement.expires_ms)
    ))?;
    Ok(Exit::Ok)
}

/// The statement's text, once it reads back as the same statement.
fn canonical(statement: &Statement) -> anyhow::Result<String> {
    let signed = statement.render();
    match Statement::parse(&signed) {
        Ok(back) if back == *statement => Ok(signed),
        Ok(_) => bail!(
            "the statement does not read back as written (a time before 1970, or too far ahead?)"
        ),
        Err(m) => bail!("cannot sign this statement: {}", m.message),
    }
}

/// The record: `signed`, then its SSH signature by `key` (read from
/// `path`); a warning when the approvers file would not count it.
fn sign(
    key: &PrivateKey,
    path: Option<&Path>,
    signed: &str,
    approvers: Option<&(String, AllowedSigners)>,
) -> anyhow::Result<String> {
    let signature = key
        .sign(approval::NAMESPACE, HashAlg::Sha512, signed.as_bytes())
        .and_then(|sig| sig.to_pem(LineEnding::LF))
        .map_err(|e| anyhow!("signing with {}: {e}", shown(path)))?;
    let text = Record::render(signed, &signature);
    let record = Record::parse(&text).map_err(|m| anyhow!("the signed record: {m}"))?;
    if let Some((file, signers)) = approvers
        && let Err(refusal) = record.verify(signers)
    {
        crate::logging::detail(
            "warning",
            &format!("this statement will not count with the approvers file {file}: {refusal}"),
        );
    }
    Ok(text)
}

/// Stores the record as the principal's tag for the target on the
/// version; where it went.
async fn store_tag<R: Registry>(
    reg: &R,
    statement: &Statement,
    text: &str,
) -> anyhow::Result<String> {
    let key = approval::tag_key(&statement.target, &statement.principal);
    let (model, version) = (&statement.model, statement.version);
    let stored = match reg.set_version_tag(model, version, &key, text).await {
        Ok(()) => reg.flush().await,
        Err(e) => Err(e),
    };
    let what = match statement.decision {
        Decision::Approve => "approval",
        Decision::Reject => "rejection",
    };
    stored.with_context(|| format!("storing the {what} as tag {key}"))?;
    Ok(format!("tag {key} of version {version}"))
}

/// `--stage S` or `--alias A`, checked.
fn target(a: &ApproveArgs) -> anyhow::Result<GateTarget> {
    match (&a.stage, &a.alias) {
        (Some(s), None) => Stage::parse(s).map(GateTarget::Stage).ok_or_else(|| {
            anyhow!("--stage {s:?}: expected None, Staging, Production or Archived")
        }),
        (None, Some(alias)) => match crate::naming::alias_problem(alias) {
            None => Ok(GateTarget::Alias(alias.clone())),
            Some(problem) => Err(anyhow!("--alias: {problem}")),
        },
        _ => bail!("give one of --stage or --alias"),
    }
}

/// The version asked for, else the model's latest.
fn pick(model: &LiveModel, version: Option<u64>) -> anyhow::Result<&LiveVersion> {
    match version {
        Some(n) => model
            .versions
            .get(&n)
            .ok_or_else(|| anyhow!("{} has no version {n}", model.name)),
        None => model
            .versions
            .values()
            .next_back()
            .ok_or_else(|| anyhow!("{} has no versions", model.name)),
    }
}

/// An unencrypted OpenSSH private key.
fn load_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let key = PrivateKey::from_openssh(text.trim())
        .map_err(|e| anyhow!("{}: not an OpenSSH private key: {e}", path.display()))?;
    if key.is_encrypted() {
        bail!(
            "{} is protected by a passphrase: print the statement with --print-statement and sign it with `ssh-keygen -Y sign -n {} -f {}` (docs/approvals.md)",
            path.display(),
            approval::NAMESPACE,
            path.display()
        );
    }
    Ok(key)
}

/// The approvers file of the manifests (`--out DIR`'s, else those of
/// `manifests/` or `.`), when their `modelsync.toml` names one: its path
/// and signers.
fn approvers_file(out: Option<&Path>) -> anyhow::Result<Option<(String, AllowedSigners)>> {
    let dirs = common::default_paths(
        &out.map(Path::to_path_buf)
            .into_iter()
            .collect::<Vec<PathBuf>>(),
    );
    let config = crate::source::config::Config::for_paths(&dirs)?;
    let Some(setting) = config.approvers else {
        return Ok(None);
    };
    let file = &setting.origin.file;
    let root = paths::root_of(&[], file);
    let path = paths::named(&root, file, &setting.path)
        .map_err(|e| anyhow!("{}: approvers {}: {e}", setting.origin, setting.path))?;
    let text = crate::source::tree::read_host(&root, &path)
        .map_err(|e| anyhow!("cannot read the approvers file {path}: {e}"))?;
    let signers = AllowedSigners::parse(&path, &text).map_err(|e| anyhow!(e))?;
    Ok(Some((path, signers)))
}

/// The one principal the approvers file lists for `key`.
fn principal_of(
    key: &PrivateKey,
    approvers: Option<&(String, AllowedSigners)>,
) -> anyhow::Result<String> {
    let Some((path, signers)) = approvers else {
        bail!(
            "name the principal to sign as with --principal (no approvers file was found to look the key up in)"
        );
    };
    let names: Vec<String> = signers
        .principals_of(key.public_key())
        .iter()
        .flat_map(|p| p.split(','))
        .map(str::to_string)
        .collect();
    match names.as_slice() {
        [one] if !one.contains(['*', '?', '!']) => Ok(one.clone()),
        [] => bail!(
            "the approvers file {path} does not list this key: name the principal with --principal"
        ),
        many => bail!(
            "the approvers file {path} lists this key for {}: name the principal with --principal",
            many.join(", ")
        ),
    }
}

/// Writes the record under `dir/approvals/`; the path written.
fn write_file(dir: &Path, statement: &Statement, text: &str) -> anyhow::Result<String> {
    if let Some(problem) = crate::naming::model_name_problem(&statement.model) {
        bail!("{problem}");
    }
    let path = dir.join(approval::file_name(statement));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(format!("file {} (commit it)", path.display()))
}

fn shown(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

//! `modelsync lease show` and `modelsync lease release --force`: the
//! applier lease on an MLflow registry, for a person deciding whether a
//! crashed apply left it behind (like `terraform force-unlock`).

use anyhow::Context;
use serde_json::json;

use super::args::{LeaseCommand, LeaseReleaseArgs, LeaseShowArgs, OutputFormat};
use super::common::{self, print};
use super::{Exit, GlobalArgs};
use crate::clock::rfc3339_seconds as rfc3339;
use crate::registry::{AnyRegistry, LeaseInfo, LeaseRecord, Registry, lease};

pub async fn run(g: &GlobalArgs, c: LeaseCommand) -> anyhow::Result<Exit> {
    let reg = common::open_registry(g, false).await?;
    let record = reg
        .read_lease()
        .await
        .with_context(|| format!("reading the applier lease on {}", reg.uri()))?;
    let LeaseRecord::Model { name, info } = record else {
        eprintln!("{}.", capitalised(lease::EMBEDDED));
        return Ok(Exit::Ok);
    };
    match c {
        LeaseCommand::Show(a) => show(&reg, &name, info.as_ref(), &a),
        LeaseCommand::Release(a) => release(&reg, info.as_ref(), &a).await,
    }
}

fn show(
    reg: &AnyRegistry,
    name: &str,
    info: Option<&LeaseInfo>,
    a: &LeaseShowArgs,
) -> anyhow::Result<Exit> {
    let now = crate::clock::wall_ms();
    let held = info.filter(|i| i.held_at(now));
    match a.format {
        OutputFormat::Json => {
            let body = match held {
                None => json!({ "held": false, "lease": name }),
                Some(i) => json!({
                    "held": true,
                    "lease": i.name,
                    "holder": i.holder,
                    "host": i.host(),
                    "pid": i.pid(),
                    "started": (i.started_ms > 0).then(|| rfc3339(i.started_ms)),
                    "expires": rfc3339(i.expires_ms),
                    "expires_in_s": (i.expires_ms - now) / 1000,
                }),
            };
            print(&format!("{}\n", serde_json::to_string_pretty(&body)?))?;
        }
        OutputFormat::Text => match held {
            None => print(&format!(
                "No applier lease is held on {} (lease model {:?}{}).\n",
                reg.uri(),
                name,
                if info.is_some() {
                    ": released or expired"
                } else {
                    ": absent"
                },
            ))?,
            Some(i) => print(&text(i, now))?,
        },
    }
    Ok(Exit::Ok)
}

fn text(i: &LeaseInfo, now: i64) -> String {
    let started = if i.started_ms > 0 {
        rfc3339(i.started_ms)
    } else {
        "unknown".into()
    };
    format!(
        "applier lease {:?}\n  holder:  {}\n  host:    {}\n  pid:     {}\n  started: {started}\n  expires: {} (in {} s)\n",
        i.name,
        i.holder,
        i.host(),
        i.pid().map_or_else(|| "unknown".into(), |p| p.to_string()),
        rfc3339(i.expires_ms),
        (i.expires_ms - now).max(0) / 1000,
    )
}

async fn release(
    reg: &AnyRegistry,
    info: Option<&LeaseInfo>,
    a: &LeaseReleaseArgs,
) -> anyhow::Result<Exit> {
    let now = crate::clock::wall_ms();
    let Some(i) = info.filter(|i| i.held_at(now)) else {
        eprintln!(
            "No applier lease is held on {}; nothing to release.",
            reg.uri()
        );
        return Ok(Exit::Ok);
    };
    let question = format!(
        "{}Release it? Only if no apply is running: a running holder would go on writing.",
        text(i, now)
    );
    if !common::confirm(a.yes, "release the applier lease", &question)? {
        eprintln!("Not released.");
        return Ok(Exit::Error);
    }
    reg.force_release_lease()
        .await
        .with_context(|| format!("releasing the applier lease on {}", reg.uri()))?;
    eprintln!("Released the applier lease held by {}.", i.holder);
    Ok(Exit::Ok)
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

//! The command line: clap definitions (`args.rs`), one module per command,
//! and the exit codes (`docs/cli.md`'s table, [`Exit`]): a pass's verdict
//! becomes one only in [`exit_for`], an error that reached `main` in
//! [`exit_for_error`].

mod approve;
mod args;
mod common;
mod completions;
mod export;
mod get;
mod history;
mod hold;
mod lease;
mod plan;
mod progress;
mod resolve;
mod validate;
mod watch;

pub use args::{Cli, ColorChoice, Command, GlobalArgs, LogFormat};

use std::process::ExitCode;

use crate::manifest::approval::Decision;
use crate::reconcile::Verdict;
use crate::registry::RegistryError;

/// Process exit codes, Terraform style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success; no changes.
    Ok = 0,
    /// An error: bad manifest, failed action.
    Error = 1,
    /// Changes present (`plan --detailed-exitcode`).
    Changes = 2,
    /// The registry could not be reached.
    Unreachable = 3,
    /// The saved plan is stale.
    Stale = 4,
    /// A gate blocked a move.
    Blocked = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// The exit code of a pass's verdict (`plan` maps changes itself, for
/// `--detailed-exitcode`).
pub fn exit_for(v: Verdict) -> Exit {
    match v {
        Verdict::Ok => Exit::Ok,
        Verdict::Changes => Exit::Changes,
        Verdict::Error | Verdict::Interrupted | Verdict::LostTerm => Exit::Error,
        Verdict::Unreachable => Exit::Unreachable,
        Verdict::Stale => Exit::Stale,
        Verdict::Blocked => Exit::Blocked,
    }
}

/// The exit code for an error that reached `main`: 3 when the registry was
/// unreachable, 1 otherwise.
pub fn exit_for_error(err: &anyhow::Error) -> Exit {
    let unreachable = err.chain().any(|cause| {
        cause
            .downcast_ref::<RegistryError>()
            .is_some_and(RegistryError::is_unreachable)
    });
    if unreachable {
        Exit::Unreachable
    } else {
        Exit::Error
    }
}

/// Runs one command, once the secrets of the environment are registered
/// for the leak check (`crate::secret`).
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    crate::secret::register_env();
    let g = &cli.global;
    match cli.command {
        Command::Validate(a) => validate::run(g, a),
        Command::Plan(a) => plan::plan(g, a).await,
        Command::Apply(a) => plan::apply(g, a).await,
        Command::Export(a) => export::run(g, a).await,
        Command::Get(a) => get::run(g, a).await,
        Command::Resolve(a) => resolve::run(g, a).await,
        Command::History(a) => history::run(g, a).await,
        Command::Watch(a) => watch::run(g, *a).await,
        Command::Approve(a) => approve::run(g, a, Decision::Approve).await,
        Command::Reject(a) => approve::run(g, a, Decision::Reject).await,
        Command::Lease(c) => lease::run(g, c).await,
        Command::Rollback(a) => hold::rollback(g, a).await,
        Command::Hold(c) => hold::run(g, c).await,
        Command::Freeze(a) => hold::freeze(g, a).await,
        Command::Unfreeze => hold::unfreeze(g).await,
        Command::Completions(a) => completions::completions(a.shell),
        Command::Man(a) => completions::man(a),
        Command::Schema => {
            common::print(&crate::manifest::schema::json_schema())?;
            Ok(Exit::Ok)
        }
    }
}

//! The `modelsync` binary: parse, set up logging, run, map to an exit code.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};
use modelsync::cli::{self, Cli, LogFormat};
use modelsync::logging;

/// `modelsync --version`: the crate's version and the commit it was built
/// from (`build.rs`; `unknown` when it could not tell).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MODELSYNC_GIT_COMMIT"),
    ")"
);

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    // The daemon reports each reconcile at info; one-shot commands stay quiet.
    let level = match cli.command {
        cli::Command::Watch(_) => "info",
        _ => "warn",
    };
    let g = &cli.global;
    let opts = logging::Options {
        json: g.log_format == LogFormat::Json,
        quiet: g.quiet,
        verbose: g.verbose,
    };
    logging::init(opts, level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            logging::error(&format!("cannot start the async runtime: {e}"));
            return cli::Exit::Error.into();
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(exit) => exit.into(),
        Err(err) => {
            logging::error(&format!("{err:#}"));
            cli::exit_for_error(&err).into()
        }
    }
}

/// Parses the command line as `Cli::try_parse` does, with [`VERSION`].
fn parse() -> Result<Cli, clap::Error> {
    let mut cmd = Cli::command().version(VERSION);
    let mut matches = cmd.try_get_matches_from_mut(std::env::args_os())?;
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))
}

/// `--help` and `--version` print and exit 0; every other parse error (a
/// mistyped flag, subcommand or value) is a usage error: clap's message on
/// stderr and exit 1, never 2, which means "changes present".
fn usage(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => cli::Exit::Error.into(),
    }
}

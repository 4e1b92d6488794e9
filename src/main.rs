//! The `modelsync` binary: parse, set up logging, run, map to an exit code.

use std::process::ExitCode;

use clap::Parser;
use modelsync::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon reports each reconcile at info; one-shot commands stay quiet.
    let level = match cli.command {
        cli::Command::Watch(_) => "info",
        _ => "warn",
    };
    modelsync::logging::init(&cli.global, level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return cli::Exit::Error.into();
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            cli::exit_for_error(&err).into()
        }
    }
}

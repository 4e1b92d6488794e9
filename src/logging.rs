//! Logging setup: tracing to stderr, text or JSON. Only `main` calls this.

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};

/// Installs the global subscriber. `RUST_LOG` overrides the level that
/// `-v`/`-q` select (default: warnings).
pub fn init(g: &GlobalArgs, default_level: &str) {
    let level = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (false, 0) => default_level,
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let directive = if level == "trace" {
        "trace,hyper=debug,h2=info,rustls=info".to_string()
    } else {
        format!("{level},hyper=warn,h2=warn,rustls=warn,reqwest=warn")
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directive));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(super_ansi());
    let _ = match g.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn super_ansi() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

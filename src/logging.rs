//! Logging setup: tracing to stderr, text or JSON. Only `main` calls
//! [`init`]; the commands report their errors through [`error`] and
//! [`diagnostic`], which honour `--log-format` and ignore `-q`.
//!
//! Both ends of the process's output pass the secret check
//! (`crate::secret`): data on stdout ([`print()`]) is refused when it holds
//! a secret's value; a log line cannot be refused, so every line on
//! stderr has the values masked (`***`) instead.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::manifest::Diagnostic;
use crate::secret::{self, Leak};

/// The tracing target of what a command reports as its outcome (the final
/// error, manifest problems). Enabled at every verbosity and whatever
/// `RUST_LOG` says, so `-q` never hides why a command failed.
pub const REPORT_TARGET: &str = "modelsync::report";

/// Set by [`init`] for `--log-format json`.
static JSON: AtomicBool = AtomicBool::new(false);

/// What `-v`/`-q`/`--log-format` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
}

/// Installs the global subscriber. `RUST_LOG` overrides the level that
/// `-v`/`-q` select (`default_level` without either), except for
/// [`REPORT_TARGET`], which always passes.
pub fn init(opts: Options, default_level: &str) {
    let level = match (opts.quiet, opts.verbose) {
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
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(directive))
        .add_directive(
            format!("{REPORT_TARGET}=error")
                .parse()
                .expect("a valid directive"),
        );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Redacted)
        .with_ansi(stderr_ansi());
    JSON.store(opts.json, Ordering::Relaxed);
    let _ = if opts.json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// True for `--log-format json`.
pub fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Reports the error that ends a command, on stderr, at every verbosity:
/// `error: MESSAGE` in text mode, an ERROR log line in JSON mode.
pub fn error(message: &str) {
    if is_json() {
        tracing::error!(target: REPORT_TARGET, "{message}");
    } else {
        stderr(&format!("error: {message}\n"));
    }
}

/// Reports one manifest problem on stderr: `file:line:column: message` in
/// text mode, an ERROR log line with `file`, `line`, `column` and `message`
/// fields in JSON mode.
pub fn diagnostic(d: &Diagnostic) {
    if is_json() {
        tracing::error!(
            target: REPORT_TARGET,
            file = %d.origin.file,
            line = d.origin.line,
            column = d.origin.column,
            "{}",
            d.message
        );
    } else {
        stderr(&format!("{d}\n"));
    }
}

fn stderr_ansi() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Reports one line of detail under a command's outcome (`stale: …`,
/// `not converged: …`), on stderr at every verbosity: `KIND: MESSAGE` in
/// text mode, an ERROR log line with a `kind` field in JSON mode.
pub fn detail(kind: &str, message: &str) {
    if is_json() {
        tracing::error!(target: REPORT_TARGET, kind, "{message}");
    } else {
        stderr(&format!("{kind}: {message}\n"));
    }
}

/// Writes data on stdout, unless it holds a secret's value: then nothing
/// is written and the leak is returned. A closed pipe is not an error.
pub fn print(s: &str) -> Result<(), Leak> {
    secret::check(s)?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
    Ok(())
}

/// A line (or lines) on stderr, secrets masked.
fn stderr(s: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(secret::redact(s).as_bytes());
}

/// The tracing writer: stderr, with secrets masked in each event (the
/// formatter hands over one whole event per write).
struct Redacted;

impl Write for Redacted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(secret::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Redacted {
    type Writer = Redacted;

    fn make_writer(&'a self) -> Self::Writer {
        Redacted
    }
}

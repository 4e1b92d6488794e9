//! The progress line of a long `apply` on a terminal (indicatif, on
//! stderr): models done of total, failures so far, elapsed time. Never
//! shown when stderr is not a terminal, with `-q` or `--log-format json`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{GlobalArgs, LogFormat};
use crate::apply::{Progress, ProgressEvent};

/// A progress bar for one apply; cleared when dropped.
pub struct ApplyProgress {
    bar: ProgressBar,
}

impl ApplyProgress {
    /// A bar when stderr is a terminal and the user did not ask for quiet
    /// or JSON logs; `None` otherwise.
    pub fn for_terminal(g: &GlobalArgs) -> Option<ApplyProgress> {
        if g.quiet || g.log_format == LogFormat::Json || !std::io::stderr().is_terminal() {
            return None;
        }
        // Hidden until the executor starts: planning shows no bar.
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template(
            "{spinner} applying: {pos}/{len} models, {msg} [{elapsed_precise}]",
        )
        .expect("valid progress template");
        bar.set_style(style);
        bar.set_message("0 failed");
        bar.enable_steady_tick(Duration::from_millis(250));
        Some(ApplyProgress { bar })
    }

    /// The callback the executor calls.
    pub fn callback(&self) -> Progress {
        let bar = self.bar.clone();
        let started = AtomicBool::new(false);
        Progress(Arc::new(move |e: ProgressEvent| {
            if !started.swap(true, Ordering::SeqCst) {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.reset_elapsed();
            }
            bar.set_length(e.total as u64);
            bar.set_position(e.done as u64);
            bar.set_message(format!("{} failed", e.failed));
        }))
    }
}

impl Drop for ApplyProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

//! SIGTERM and SIGINT, as CI runners send them on cancel or timeout: the
//! first asks the pass to finish the model in flight, start no other and
//! release the lease; a second one exits at once.

use crate::apply::CancelFlag;

/// Waits for SIGTERM or SIGINT; returns its name.
pub async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// A flag that the first SIGTERM/SIGINT sets (then `then` runs); the
/// second signal ends the process with exit code 1.
pub fn cancel_on_signal(then: impl FnOnce() + Send + 'static) -> CancelFlag {
    let cancel = CancelFlag::default();
    let flag = cancel.clone();
    tokio::spawn(async move {
        let which = wait_for_signal().await;
        tracing::warn!(
            signal = which,
            "shutting down: finishing the model in flight, starting no other"
        );
        flag.cancel();
        then();
        let again = wait_for_signal().await;
        tracing::warn!(signal = again, "second signal: exiting now");
        std::process::exit(1);
    });
    cancel
}

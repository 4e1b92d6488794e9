//! SIGTERM and SIGINT, as CI runners send them on cancel or timeout: the
//! first asks the pass to finish the model in flight, start no other and
//! release the lease; a second one exits at once with 1 (the process's one
//! exit code not chosen by `cli/`: there is no outcome left to map).

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

/// A flag that the first SIGTERM/SIGINT sets; the second signal ends the
/// process with exit code 1.
pub fn cancel_on_signal() -> CancelFlag {
    let cancel = CancelFlag::default();
    set_on_signal(&cancel);
    cancel
}

/// Sets `cancel` on the first SIGTERM/SIGINT; the second signal ends the
/// process with exit code 1.
pub fn set_on_signal(cancel: &CancelFlag) {
    let flag = cancel.clone();
    tokio::spawn(async move {
        let which = wait_for_signal().await;
        tracing::warn!(
            signal = which,
            "shutting down: finishing the model in flight, starting no other"
        );
        flag.cancel();
        exit_on_second_signal().await;
    });
}

/// After the first signal: waits for another and ends the process at once.
pub async fn exit_on_second_signal() {
    let again = wait_for_signal().await;
    tracing::warn!(signal = again, "second signal: exiting now");
    std::process::exit(1);
}

//! What operators see (issue 14): the daemon's status page in headless
//! Chromium, notifications, signed-commits-only, and the CLI's progress,
//! completions and man pages.

mod cli;
mod notify;
mod page;
mod signed;

//! What operators see (issue 14): the daemon's status page in headless
//! Chromium, notifications, signed-commits-only, and the CLI's progress,
//! completions and man pages.

mod cli;
mod notify;
mod page;
mod signed;

/// A model with two versions and `champion` on `champion`; `gated` adds
/// a Production stage behind a `requireTag` gate.
pub fn model(name: &str, champion: &str, gated: bool) -> String {
    let gate = if gated {
        "  stages:\n    Production: v1\n  gates:\n    Production:\n      - requireTag: {key: approved, value: \"true\"}\n"
    } else {
        ""
    };
    format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    \
         v1: {{source: s3://bucket/{name}/1}}\n    v2: {{source: s3://bucket/{name}/2}}\n  aliases:\n    \
         champion: {champion}\n{gate}"
    )
}

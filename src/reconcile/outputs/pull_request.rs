//! Pull-request mode: the output's commit pushed (forced: the branch is
//! modelsync's own) to `modelsync/outputs/<branch>`, and one pull request
//! from there into the output's branch — opened once, then updated by
//! later passes (its title and body say what it changes now).

use crate::outputs::{Change, Settings, Written};
use crate::source::outputs::Branch;
use crate::source::outputs::github::GitHub;

/// The branch a pull request of an output to `base` comes from.
pub fn head_branch(base: &str) -> String {
    format!("modelsync/outputs/{base}")
}

/// Pushes the last commit of `branch` to the pull request's branch (unless
/// that branch already holds the same files) and opens or updates the
/// pull request.
pub async fn open_or_update(
    branch: Branch,
    settings: &Settings,
    commit: &str,
    changes: &[Change],
) -> Result<Written, String> {
    let github = GitHub::for_repo(&settings.repo)?;
    let head = head_branch(&settings.branch);
    let pushed_head = head.clone();
    tokio::task::spawn_blocking(move || {
        let same = branch
            .fetch_other(&pushed_head)?
            .and_then(|id| branch.tree_of(id))
            .is_some_and(|tree| Some(tree) == branch.committed_tree());
        if same {
            return Ok(());
        }
        branch.push(&pushed_head, true).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("the git work stopped: {e}"))??;
    let (title, body) = describe(changes);
    let (pull, opened) = match github.find_open(&head, &settings.branch).await? {
        Some(open) => (github.update(open.number, &title, &body).await?, false),
        None => (
            github.open(&head, &settings.branch, &title, &body).await?,
            true,
        ),
    };
    Ok(Written::PullRequest {
        commit: commit.to_string(),
        number: pull.number,
        url: pull.html_url,
        opened,
    })
}

/// The pull request's title and body.
fn describe(changes: &[Change]) -> (String, String) {
    let message = crate::outputs::commit_message(changes);
    let (title, rest) = message.split_once('\n').unwrap_or((&message, ""));
    let mut body =
        String::from("Written by modelsync: the marked fields below follow the registry.\n\n");
    for line in rest.lines().filter(|l| !l.is_empty()) {
        body.push_str(&format!("- `{line}`\n"));
    }
    (title.to_string(), body)
}

//! Folder watching: notify's recommended watcher on the given paths
//! (folders recursively; for a file, its parent folder, so that editors that
//! save by writing a temp file and renaming it are seen), debounced so that
//! a burst of saves fires one [`Trigger::Change`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::engine::{Trigger, Triggers};

/// A burst is cut off after this long even if changes keep coming.
const MAX_WAIT_FACTOR: u32 = 10;

/// Starts watching `paths`; the watcher stops when the returned value is
/// dropped. Changes fire [`Trigger::Change`] after `debounce` of quiet.
pub fn watch(
    paths: &[PathBuf],
    triggers: Triggers,
    debounce: Duration,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) if relevant(&event) => {
                tracing::debug!(paths = ?event.paths, kind = ?event.kind, "file change");
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "file watcher error"),
        })
        .context("starting the file watcher")?;
    for path in paths {
        let (target, mode) = if path.is_dir() {
            (path.clone(), RecursiveMode::Recursive)
        } else {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            (parent.to_path_buf(), RecursiveMode::NonRecursive)
        };
        watcher
            .watch(&target, mode)
            .with_context(|| format!("watching {}", target.display()))?;
    }
    tokio::spawn(debounce_into(rx, triggers, debounce));
    Ok(watcher)
}

/// Turns bursts of raw events into single triggers: fires once `quiet` has
/// passed without an event (or `MAX_WAIT_FACTOR * quiet` after the first).
pub async fn debounce_into(
    mut rx: mpsc::UnboundedReceiver<()>,
    triggers: Triggers,
    quiet: Duration,
) {
    while rx.recv().await.is_some() {
        let first = Instant::now();
        let cap = first + quiet * MAX_WAIT_FACTOR;
        let mut deadline = first + quiet;
        loop {
            tokio::select! {
                more = rx.recv() => match more {
                    Some(()) => deadline = (Instant::now() + quiet).min(cap),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        triggers.fire(Trigger::Change);
    }
}

/// Changes that can matter: not reads, not hidden files (`.git`,
/// `.modelsync`, editor swap files), not backups (`~`): manifests,
/// prompts' templates (`source::TEMPLATE_EXTENSIONS`), signed approval
/// files (`*.approval`) or extension-less
/// entries (folders, editors' probe files).
fn relevant(event: &notify::Event) -> bool {
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    event.paths.iter().any(|p| {
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        if name.starts_with('.') || name.ends_with('~') {
            return false;
        }
        match p.extension().and_then(|e| e.to_str()) {
            Some(ext) => ext == "yaml" || ext == "yml" || crate::source::is_other_file(p),
            None => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, ModifyKind};

    fn ev(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn filters_irrelevant_events() {
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(relevant(&ev(modify, "/m/churn.yaml")));
        assert!(relevant(&ev(modify, "/m/churn.yml")));
        assert!(relevant(&ev(
            EventKind::Create(CreateKind::Folder),
            "/m/sub"
        )));
        assert!(!relevant(&ev(
            EventKind::Access(AccessKind::Any),
            "/m/a.yaml"
        )));
        assert!(!relevant(&ev(modify, "/m/.churn.yaml.swp")));
        assert!(!relevant(&ev(modify, "/m/churn.yaml~")));
        assert!(!relevant(&ev(modify, "/m/registry.json")));
        assert!(relevant(&ev(modify, "/m/prompts/summarize.txt")));
        assert!(relevant(&ev(
            modify,
            "/m/approvals/m/Production/v3.alice.approval"
        )));
        assert!(!relevant(&ev(modify, "/m/.modelsync")));
    }

    async fn count_triggers(sends: Vec<Duration>, quiet: Duration) -> Vec<Instant> {
        let triggers = Triggers::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(debounce_into(rx, triggers.clone(), quiet));
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            for at in sends {
                tokio::time::sleep_until(start + at).await;
                tx.send(()).expect("send");
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let mut fired = Vec::new();
        let mut step = Collect(&mut fired);
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let backoff = crate::backoff::Backoff::standard();
        tokio::select! {
            _ = super::super::engine::run_loop(&mut step, &triggers, backoff, stop_rx) => {}
            _ = tokio::time::sleep(Duration::from_secs(20)) => {}
        }
        sender.abort();
        task.abort();
        fired
    }

    struct Collect<'a>(&'a mut Vec<Instant>);

    impl super::super::engine::Step for Collect<'_> {
        async fn run(&mut self, _: &super::super::engine::Batch) -> super::super::engine::Next {
            self.0.push(Instant::now());
            super::super::engine::Next::Done
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_saves_is_one_trigger() {
        let sends = (0..20).map(|i| Duration::from_millis(10 * i)).collect();
        let fired = count_triggers(sends, Duration::from_millis(300)).await;
        assert_eq!(fired.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn separate_saves_are_separate_triggers() {
        let sends = vec![
            Duration::ZERO,
            Duration::from_secs(2),
            Duration::from_secs(4),
        ];
        let fired = count_triggers(sends, Duration::from_millis(300)).await;
        assert_eq!(fired.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_endless_stream_still_fires_at_the_cap() {
        let sends = (0..100).map(|i| Duration::from_millis(100 * i)).collect();
        let fired = count_triggers(sends, Duration::from_millis(300)).await;
        // 10 s of changes, capped at 3 s per burst.
        assert!((3..=5).contains(&fired.len()), "{}", fired.len());
    }
}

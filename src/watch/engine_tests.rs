//! Loop tests with a fake step under tokio's paused clock.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::*;

/// A step that takes `work` per run and answers from a script (then `Done`).
struct Fake {
    work: Duration,
    script: Vec<Next>,
    runs: Vec<(Instant, Reasons)>,
    batches: Vec<Batch>,
}

impl Fake {
    fn new(work: Duration, script: Vec<Next>) -> Fake {
        Fake {
            work,
            script,
            runs: Vec::new(),
            batches: Vec::new(),
        }
    }
}

impl Step for Fake {
    async fn run(&mut self, batch: &Batch) -> Next {
        self.runs.push((Instant::now(), batch.reasons.clone()));
        self.batches.push(batch.clone());
        tokio::time::sleep(self.work).await;
        if self.script.is_empty() {
            Next::Done
        } else {
            self.script.remove(0)
        }
    }
}

/// Runs the loop with `fake` until `until` has elapsed, while `drive`
/// fires triggers; returns the fake.
async fn drive<F>(mut fake: Fake, until: Duration, backoff: Backoff, drive: F) -> Fake
where
    F: FnOnce(Triggers) -> tokio::task::JoinHandle<()>,
{
    let triggers = Triggers::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = drive(triggers.clone());
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(until).await;
        let _ = stop_tx.send(true);
    });
    run_loop(&mut fake, &triggers, backoff, stop_rx).await;
    driver.abort();
    stopper.await.expect("stopper");
    fake
}

fn seeded() -> Backoff {
    Backoff::standard().with_seed(42)
}

#[tokio::test(start_paused = true)]
async fn a_burst_during_a_run_coalesces_into_one_more_run() {
    let fake = Fake::new(Duration::from_secs(2), vec![]);
    let fake = drive(fake, Duration::from_secs(60), seeded(), |t| {
        tokio::spawn(async move {
            t.fire(Trigger::Startup);
            tokio::time::sleep(Duration::from_millis(100)).await;
            for i in 0..20 {
                t.fire(if i % 2 == 0 {
                    Trigger::Change
                } else {
                    Trigger::Webhook
                });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    })
    .await;
    assert_eq!(fake.runs.len(), 2, "{:?}", fake.runs);
    assert_eq!(fake.runs[0].1, Reasons::from([Trigger::Startup]));
    assert_eq!(
        fake.runs[1].1,
        Reasons::from([Trigger::Change, Trigger::Webhook])
    );
}

#[tokio::test(start_paused = true)]
async fn never_two_runs_at_once() {
    let fake = Fake::new(Duration::from_millis(700), vec![]);
    let fake = drive(fake, Duration::from_secs(30), seeded(), |t| {
        tokio::spawn(async move {
            for _ in 0..100 {
                t.fire(Trigger::Change);
                tokio::time::sleep(Duration::from_millis(90)).await;
            }
        })
    })
    .await;
    for pair in fake.runs.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= Duration::from_millis(700));
    }
    // 9 s of triggers, 0.7 s per run: about 13 runs, not 100.
    assert!((10..=15).contains(&fake.runs.len()), "{}", fake.runs.len());
}

#[tokio::test(start_paused = true)]
async fn failures_retry_with_growing_capped_backoff() {
    let fake = Fake::new(Duration::ZERO, vec![Next::Retry; 14]);
    let fake = drive(fake, Duration::from_secs(3600), seeded(), |t| {
        tokio::spawn(async move { t.fire(Trigger::Startup) })
    })
    .await;
    let gaps: Vec<Duration> = fake.runs.windows(2).map(|p| p[1].0 - p[0].0).collect();
    assert!(
        fake.runs[1..]
            .iter()
            .all(|r| r.1 == Reasons::from([Trigger::Retry]))
    );
    assert!(gaps[0] <= Duration::from_secs(1), "{gaps:?}");
    for (n, pair) in gaps.windows(2).enumerate() {
        if n < 7 {
            assert!(pair[1] > pair[0], "backoff must grow: {gaps:?}");
        }
    }
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_secs(300)),
        "{gaps:?}"
    );
    assert!(
        gaps[10] >= Duration::from_secs(225),
        "capped near 5 min: {gaps:?}"
    );
    // After the script runs out the step succeeds: no more retries.
    assert_eq!(fake.runs.len(), 15);
}

#[tokio::test(start_paused = true)]
async fn success_resets_the_backoff() {
    let script = vec![
        Next::Retry,
        Next::Retry,
        Next::Retry,
        Next::Done,
        Next::Retry,
    ];
    let fake = Fake::new(Duration::ZERO, script);
    let fake = drive(fake, Duration::from_secs(600), seeded(), |t| {
        tokio::spawn(async move {
            t.fire(Trigger::Startup);
            tokio::time::sleep(Duration::from_secs(60)).await;
            t.fire(Trigger::Change);
        })
    })
    .await;
    assert_eq!(fake.runs.len(), 6, "{:?}", fake.runs);
    let last_gap = fake.runs[5].0 - fake.runs[4].0;
    assert!(last_gap <= Duration::from_secs(1), "{last_gap:?}");
}

#[tokio::test(start_paused = true)]
async fn an_invalid_source_is_not_retried_until_the_next_trigger() {
    let fake = Fake::new(Duration::ZERO, vec![Next::WaitForChange]);
    let fake = drive(fake, Duration::from_secs(1800), seeded(), |t| {
        tokio::spawn(async move {
            t.fire(Trigger::Startup);
            tokio::time::sleep(Duration::from_secs(900)).await;
            t.fire(Trigger::Change);
        })
    })
    .await;
    assert_eq!(fake.runs.len(), 2, "{:?}", fake.runs);
    assert_eq!(fake.runs[1].1, Reasons::from([Trigger::Change]));
}

#[tokio::test(start_paused = true)]
async fn a_trigger_runs_before_a_pending_retry_is_due() {
    let fake = Fake::new(Duration::ZERO, vec![Next::Retry, Next::Retry, Next::Retry]);
    let fake = drive(fake, Duration::from_secs(20), seeded(), |t| {
        tokio::spawn(async move {
            t.fire(Trigger::Startup);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            // Backoff now waits about 2 s; a webhook runs at once.
            t.fire(Trigger::Webhook);
        })
    })
    .await;
    let kinds: Vec<_> = fake.runs.iter().map(|r| r.1.clone()).collect();
    assert!(
        kinds.contains(&Reasons::from([Trigger::Webhook])),
        "{kinds:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn ticker_fires_periodically_and_stops_when_closed() {
    let fake = Fake::new(Duration::ZERO, vec![]);
    let fake = drive(fake, Duration::from_secs(301), seeded(), |t| {
        let h = spawn_ticker(t.clone(), Duration::from_secs(60), Trigger::Resync);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(250)).await;
            t.close();
            drop(h);
        })
    })
    .await;
    assert_eq!(fake.runs.len(), 4, "{:?}", fake.runs);
    assert!(
        fake.runs
            .iter()
            .all(|r| r.1 == Reasons::from([Trigger::Resync]))
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_running_step_then_stops() {
    let fake = Fake::new(Duration::from_secs(5), vec![]);
    let start = Instant::now();
    let fake = drive(fake, Duration::from_secs(1), seeded(), |t| {
        tokio::spawn(async move {
            t.fire(Trigger::Startup);
            tokio::time::sleep(Duration::from_secs(2)).await;
            t.fire(Trigger::Change);
        })
    })
    .await;
    assert_eq!(fake.runs.len(), 1);
    assert!(Instant::now() - start >= Duration::from_secs(5));
}

/// The models a batch names, as `&str`s.
fn named(b: &Batch) -> Vec<&str> {
    b.models.iter().map(String::as_str).collect()
}

#[tokio::test(start_paused = true)]
async fn model_events_in_a_burst_coalesce_per_model() {
    let fake = Fake::new(Duration::from_secs(2), vec![]);
    let fake = drive(fake, Duration::from_secs(60), seeded(), |t| {
        tokio::spawn(async move {
            t.fire(Trigger::Startup);
            tokio::time::sleep(Duration::from_millis(100)).await;
            for i in 0..30 {
                let model = ["a", "b", "a"][i % 3];
                t.fire_for(Trigger::RegistryEvent, model.to_string());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // After the burst: one more delivery, one more run.
            tokio::time::sleep(Duration::from_secs(10)).await;
            t.fire_for(Trigger::RegistryEvent, "c".to_string());
        })
    })
    .await;
    assert_eq!(fake.batches.len(), 3, "{:?}", fake.batches);
    assert!(fake.batches[0].everything);
    let burst = &fake.batches[1];
    assert_eq!(burst.reasons, Reasons::from([Trigger::RegistryEvent]));
    assert_eq!(named(burst), ["a", "b"], "one run for the burst, per model");
    assert!(!burst.everything && !burst.source, "{burst:?}");
    assert_eq!(named(&fake.batches[2]), ["c"]);
}

#[tokio::test(start_paused = true)]
async fn a_full_trigger_in_a_burst_covers_the_named_models() {
    let fake = Fake::new(Duration::from_secs(2), vec![]);
    let fake = drive(fake, Duration::from_secs(60), seeded(), |t| {
        tokio::spawn(async move {
            t.fire(Trigger::Startup);
            tokio::time::sleep(Duration::from_millis(100)).await;
            t.fire_for(Trigger::RegistryEvent, "a".to_string());
            t.fire(Trigger::Poll);
            t.fire(Trigger::Resync);
            tokio::time::sleep(Duration::from_secs(10)).await;
            t.fire(Trigger::Poll);
        })
    })
    .await;
    assert_eq!(fake.batches.len(), 3, "{:?}", fake.batches);
    let both = &fake.batches[1];
    assert!(both.everything && both.source, "{both:?}");
    assert_eq!(named(both), ["a"]);
    let poll = &fake.batches[2];
    assert!(
        poll.source && !poll.everything && poll.models.is_empty(),
        "a poll covers what the new commit changed: {poll:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_is_retried_over_the_same_models() {
    let fake = Fake::new(Duration::ZERO, vec![Next::Retry, Next::Retry]);
    let fake = drive(fake, Duration::from_secs(60), seeded(), |t| {
        tokio::spawn(async move {
            t.fire_for(Trigger::RegistryEvent, "a".to_string());
            // During the second backoff: a delivery for b.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            t.fire_for(Trigger::RegistryEvent, "b".to_string());
        })
    })
    .await;
    let runs: Vec<(Reasons, Vec<&str>)> = fake
        .batches
        .iter()
        .map(|b| (b.reasons.clone(), named(b)))
        .collect();
    assert_eq!(
        runs,
        [
            (Reasons::from([Trigger::RegistryEvent]), vec!["a"]),
            (Reasons::from([Trigger::Retry]), vec!["a"]),
            (Reasons::from([Trigger::RegistryEvent]), vec!["a", "b"]),
        ]
    );
    assert!(fake.batches.iter().all(|b| !b.everything));
}

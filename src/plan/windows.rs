//! Promotion windows and the freeze, checked like gates (issue 19): pure
//! evaluation on the evaluation clock (`PlanContext::now_ms`, so
//! `MODELSYNC_NOW` sets it).
//!
//! A window opens at each time its cron schedule matches, read in its time
//! zone (croner walks wall-clock time across DST changes), and stays open
//! for its duration of elapsed time. A deny window that applies to a move
//! and is open blocks it until it closes (openings that overlap count as
//! one); when allow windows apply to a move, it is blocked while none of
//! them is open, until the next opens. A freeze blocks every move until
//! `modelsync unfreeze`. `--break-glass` turns each of these blocks into
//! [`GateStatus::Overridden`]: shown, not blocking, and stamped.

use chrono::{DateTime, TimeZone, Utc};

use super::{BreakGlass, GateCheck, GateStatus};
use crate::manifest::GateTarget;
use crate::manifest::windows::{Window, WindowKind};
use crate::state::hold::Freeze;

/// The name of the check a freeze makes (a gate check's `gate`).
pub const FREEZE: &str = "freeze";

/// Openings that chain into one (a window reopening before it closed) are
/// followed at most this far.
const CHAIN_LIMIT: usize = 10_000;

/// What windows and the freeze say about a move of `model` into `target`
/// at `now_ms`: one check each for the freeze, every open deny window, and
/// the allow windows that apply.
pub fn checks(
    windows: &[Window],
    freeze: Option<&Freeze>,
    (model, target): (&str, &GateTarget),
    now_ms: i64,
    glass: Option<&BreakGlass>,
) -> Vec<GateCheck> {
    let blocked = |gate: String, detail: String| match glass {
        None => check(gate, GateStatus::Blocked, detail),
        Some(b) => check(
            gate,
            GateStatus::Overridden,
            format!(
                "{detail}; overridden: --break-glass by {}: {:?}",
                b.by, b.reason
            ),
        ),
    };
    let mut out = Vec::new();
    if let Some(f) = freeze {
        out.push(blocked(
            FREEZE.into(),
            format!("{} (until `modelsync unfreeze`)", f.describe()),
        ));
    }
    let (name, is_stage) = match target {
        GateTarget::Stage(s) => (s.as_str().to_string(), true),
        GateTarget::Alias(a) => (a.clone(), false),
    };
    let applying: Vec<&Window> = windows
        .iter()
        .filter(|w| w.applies(model, &name, is_stage))
        .collect();
    for w in applying.iter().filter(|w| w.kind == WindowKind::Deny) {
        if let Some((from, until)) = open_span(w, now_ms) {
            out.push(blocked(
                format!("window {} (deny)", w.name),
                format!("open since {} until {}", when(w, from), when(w, until)),
            ));
        }
    }
    let allow: Vec<&&Window> = applying
        .iter()
        .filter(|w| w.kind == WindowKind::Allow)
        .collect();
    if allow.is_empty() {
        return out;
    }
    let names = allow
        .iter()
        .map(|w| w.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let gate = format!("window {names} (allow)");
    match allow
        .iter()
        .find_map(|w| open_span(w, now_ms).map(|s| (w, s)))
    {
        Some((w, (_, until))) => out.push(check(
            gate,
            GateStatus::Passed,
            format!("open until {}", when(w, until)),
        )),
        None => {
            let next = allow
                .iter()
                .filter_map(|w| next_start(w, now_ms).map(|t| (t, w)))
                .min_by_key(|(t, _)| *t);
            let detail = match next {
                Some((t, w)) => format!("closed until {}", when(w, t)),
                None => "closed, and its schedule never opens it again".into(),
            };
            out.push(blocked(gate, detail));
        }
    }
    out
}

fn check(gate: String, status: GateStatus, detail: String) -> GateCheck {
    GateCheck {
        gate,
        status,
        detail,
        approved_by: Vec::new(),
    }
}

/// When the opening of `w` that covers `now_ms` started and when it (and
/// any opening chained onto it) closes, ms; `None` when closed.
pub fn open_span(w: &Window, now_ms: i64) -> Option<(i64, i64)> {
    let cron: croner::Cron = w.schedule.parse().ok()?;
    let now = local(w, now_ms)?;
    let start = cron.find_previous_occurrence(&now, true).ok()?;
    let from = start.timestamp_millis();
    let mut until = from.saturating_add(w.duration_ms);
    if now_ms >= until {
        return None;
    }
    let mut last = start;
    for _ in 0..CHAIN_LIMIT {
        match cron.find_next_occurrence(&last, false) {
            Ok(next) if next.timestamp_millis() <= until => {
                until = until.max(next.timestamp_millis().saturating_add(w.duration_ms));
                last = next;
            }
            _ => break,
        }
    }
    Some((from, until))
}

/// When `w` next opens after `now_ms`, ms.
pub fn next_start(w: &Window, now_ms: i64) -> Option<i64> {
    let cron: croner::Cron = w.schedule.parse().ok()?;
    let next = cron.find_next_occurrence(&local(w, now_ms)?, false).ok()?;
    Some(next.timestamp_millis())
}

fn local(w: &Window, ms: i64) -> Option<DateTime<chrono_tz::Tz>> {
    Some(
        Utc.timestamp_millis_opt(ms)
            .single()?
            .with_timezone(&w.timezone),
    )
}

/// `2026-03-30T07:00:00Z` (and, for another zone, `09:00 Europe/Berlin`).
fn when(w: &Window, ms: i64) -> String {
    let utc = crate::clock::rfc3339_seconds(ms);
    match (w.timezone == chrono_tz::UTC, local(w, ms)) {
        (false, Some(t)) => format!("{utc} ({} {})", t.format("%a %H:%M"), w.timezone.name()),
        _ => utc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Origin;
    use crate::state::Stage;

    fn window(kind: WindowKind, schedule: &str, hours: i64, tz: &str) -> Window {
        Window {
            name: "w".into(),
            kind,
            schedule: schedule.into(),
            duration_ms: hours * 3_600_000,
            timezone: tz.parse().expect("tz"),
            targets: Vec::new(),
            models: Vec::new(),
            origin: Origin::default(),
        }
    }

    fn ms(t: &str) -> i64 {
        crate::clock::parse_rfc3339(t).expect("time")
    }

    fn blocked(ws: &[Window], now: &str) -> Option<String> {
        let prod = GateTarget::Stage(Stage::Production);
        checks(ws, None, ("m", &prod), ms(now), None)
            .into_iter()
            .find(|c| c.status == GateStatus::Blocked)
            .map(|c| c.detail)
    }

    #[test]
    fn a_deny_window_blocks_from_its_first_minute_to_its_last() {
        // Friday 17:00 Berlin for 64 h, in winter (CET, UTC+1).
        let w = [window(
            WindowKind::Deny,
            "0 17 * * FRI",
            64,
            "Europe/Berlin",
        )];
        assert_eq!(blocked(&w, "2026-01-16T15:59:59Z"), None);
        let d = blocked(&w, "2026-01-16T16:00:00Z").expect("open");
        assert_eq!(
            d,
            "open since 2026-01-16T16:00:00Z (Fri 17:00 Europe/Berlin) until \
             2026-01-19T08:00:00Z (Mon 09:00 Europe/Berlin)"
        );
        assert!(blocked(&w, "2026-01-19T07:59:59Z").is_some());
        assert_eq!(blocked(&w, "2026-01-19T08:00:00Z"), None);
    }

    #[test]
    fn a_window_over_the_spring_change_lasts_its_elapsed_duration() {
        // Berlin moves to CEST on Sunday 2026-03-29: Friday 17:00 CET is
        // 16:00Z; 64 h later is Monday 08:00Z, 10:00 CEST.
        let w = [window(
            WindowKind::Deny,
            "0 17 * * FRI",
            64,
            "Europe/Berlin",
        )];
        let d = blocked(&w, "2026-03-29T12:00:00Z").expect("open");
        assert!(
            d.ends_with("until 2026-03-30T08:00:00Z (Mon 10:00 Europe/Berlin)"),
            "{d}"
        );
        // The Friday after: 17:00 CEST is 15:00Z.
        assert_eq!(blocked(&w, "2026-04-03T14:59:00Z"), None);
        assert!(blocked(&w, "2026-04-03T15:00:00Z").is_some());
    }

    #[test]
    fn a_daily_window_at_a_time_the_autumn_change_repeats_opens_once() {
        // New York falls back on 2026-11-01: 01:30 happens twice (EDT,
        // then EST). A 30-minute deny window at 01:30 opens at the first.
        let w = [window(
            WindowKind::Deny,
            "30 1 * * *",
            0,
            "America/New_York",
        )];
        let w = [Window {
            duration_ms: 30 * 60_000,
            ..w[0].clone()
        }];
        assert!(blocked(&w, "2026-11-01T05:30:00Z").is_some(), "01:30 EDT");
        assert_eq!(blocked(&w, "2026-11-01T06:00:00Z"), None, "01:00 EST");
        assert!(
            blocked(&w, "2026-10-31T05:45:00Z").is_some(),
            "the day before"
        );
    }

    #[test]
    fn an_allow_window_blocks_outside_until_it_next_opens() {
        let w = [window(WindowKind::Allow, "0 9 * * MON-FRI", 8, "UTC")];
        // Friday 16:59:59 is inside; 17:00 is out until Monday 09:00.
        assert_eq!(blocked(&w, "2026-01-16T16:59:59Z"), None);
        assert_eq!(
            blocked(&w, "2026-01-16T17:00:00Z").as_deref(),
            Some("closed until 2026-01-19T09:00:00Z")
        );
        assert_eq!(blocked(&w, "2026-01-19T09:00:00Z"), None);
    }

    #[test]
    fn overlapping_openings_chain_into_one() {
        // Hourly, two hours each: always open once opened.
        let w = window(WindowKind::Deny, "0 * * * *", 2, "UTC");
        let (from, until) = open_span(&w, ms("2026-01-16T10:30:00Z")).expect("open");
        assert_eq!(from, ms("2026-01-16T10:00:00Z"));
        assert!(until - from > 24 * 3_600_000, "chained");
    }

    #[test]
    fn the_freeze_and_windows_yield_to_broken_glass_and_say_so() {
        let w = [window(WindowKind::Deny, "0 0 * * *", 24, "UTC")];
        let f = Freeze {
            by: "bob".into(),
            at: "2026-01-16T00:00:00Z".into(),
            reason: "incident".into(),
        };
        let prod = GateTarget::Stage(Stage::Production);
        let now = ms("2026-01-16T12:00:00Z");
        let plain = checks(&w, Some(&f), ("m", &prod), now, None);
        assert_eq!(plain.len(), 2);
        assert!(plain.iter().all(|c| c.status == GateStatus::Blocked));
        assert_eq!(plain[0].gate, "freeze");
        assert_eq!(plain[1].gate, "window w (deny)");
        let glass = BreakGlass {
            by: "alice".into(),
            reason: "hotfix".into(),
        };
        let broken = checks(&w, Some(&f), ("m", &prod), now, Some(&glass));
        assert!(broken.iter().all(|c| c.status == GateStatus::Overridden));
        assert!(
            broken[0]
                .detail
                .ends_with("overridden: --break-glass by alice: \"hotfix\"")
        );
        // A window for other targets says nothing.
        let staging = [Window {
            targets: vec!["Staging".into()],
            ..w[0].clone()
        }];
        assert!(checks(&staging, None, ("m", &prod), now, None).is_empty());
    }
}

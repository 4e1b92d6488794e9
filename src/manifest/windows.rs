//! Promotion windows (`[[windows]]` in `modelsync.toml`, issue 19), as
//! written and as validated: a cron `schedule` (croner's syntax: five
//! fields, or six with seconds first; names like `FRI`; `L`, `#`), a
//! `duration` each opening lasts (elapsed time, humantime: `64h`, `90m`),
//! a `timezone` the schedule is read in (IANA, default `UTC`), and
//! optional `targets` and `models` (globs: `*`, `?`) it applies to.
//! `kind = "deny"` blocks moves while open; `kind = "allow"` blocks them
//! while none of the allow windows that apply is open. The planner
//! evaluates them (`plan::windows`). Pure: every problem is a
//! [`Diagnostic`] with file, line and column, all at once.

use serde::{Deserialize, Serialize};

use super::{Diagnostic, Origin};

/// A value as written, with where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Located {
    pub value: String,
    pub origin: Origin,
}

/// One `[[windows]]` table as written (what a saved plan keeps).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSetting {
    /// Where the table is.
    pub origin: Origin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: Located,
    pub schedule: Located,
    pub duration: Located,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Located>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
}

/// Whether a window lets moves happen or stops them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// Moves only while it (or another allow window) is open.
    Allow,
    /// No moves while it is open.
    Deny,
}

/// A validated window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `name`, else `<kind> <schedule>`.
    pub name: String,
    pub kind: WindowKind,
    pub schedule: String,
    pub duration_ms: i64,
    pub timezone: chrono_tz::Tz,
    /// Globs over stage names (any case) and aliases; empty: every target.
    pub targets: Vec<String>,
    /// Globs over model names; empty: every model.
    pub models: Vec<String>,
    pub origin: Origin,
}

impl Window {
    /// True when the window applies to a move of `model` into `target` (a
    /// stage's name or an alias).
    pub fn applies(&self, model: &str, target: &str, is_stage: bool) -> bool {
        let models = self.models.is_empty() || self.models.iter().any(|g| glob(g, model, false));
        let targets =
            self.targets.is_empty() || self.targets.iter().any(|g| glob(g, target, is_stage));
        models && targets
    }
}

/// Validates every window; all problems at once.
pub fn validate(settings: &[WindowSetting]) -> Result<Vec<Window>, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    let out: Vec<Window> = settings
        .iter()
        .filter_map(|s| window(s, &mut problems))
        .collect();
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// One window; `None` when it has a problem (added to `problems`).
fn window(s: &WindowSetting, problems: &mut Vec<Diagnostic>) -> Option<Window> {
    let mut problem = |origin: &Origin, message: String| {
        problems.push(Diagnostic {
            origin: origin.clone(),
            message,
        })
    };
    let kind = kind(s, &mut problem);
    let schedule = s.schedule.value.trim().to_string();
    if let Err(e) = schedule.parse::<croner::Cron>() {
        problem(
            &s.schedule.origin,
            format!("window schedule {schedule:?} is not a cron schedule: {e}"),
        );
    }
    let duration = duration(s, &mut problem);
    let timezone = timezone(s, &mut problem);
    for g in s.targets.iter().chain(&s.models) {
        if g.is_empty() {
            problem(
                &s.origin,
                "window targets and models must not be empty globs".into(),
            );
        }
    }
    let (kind, d, timezone) = (kind?, duration?, timezone?);
    Some(Window {
        name: s
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("{} {schedule}", s.kind.value)),
        kind,
        schedule,
        duration_ms: i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        timezone,
        targets: s.targets.clone(),
        models: s.models.clone(),
        origin: s.origin.clone(),
    })
}

/// `kind:` `allow` or `deny`.
fn kind(s: &WindowSetting, problem: &mut impl FnMut(&Origin, String)) -> Option<WindowKind> {
    match s.kind.value.as_str() {
        "allow" => Some(WindowKind::Allow),
        "deny" => Some(WindowKind::Deny),
        other => {
            problem(
                &s.kind.origin,
                format!("window kind {other:?}: expected \"deny\" or \"allow\""),
            );
            None
        }
    }
}

/// `duration:` a positive duration.
fn duration(
    s: &WindowSetting,
    problem: &mut impl FnMut(&Origin, String),
) -> Option<std::time::Duration> {
    let duration = humantime::parse_duration(s.duration.value.trim())
        .ok()
        .filter(|d| !d.is_zero());
    if duration.is_none() {
        problem(
            &s.duration.origin,
            format!(
                "window duration {:?}: expected a positive duration such as 2h, 90m or 64h",
                s.duration.value
            ),
        );
    }
    duration
}

/// `timezone:` an IANA time zone (default UTC).
fn timezone(s: &WindowSetting, problem: &mut impl FnMut(&Origin, String)) -> Option<chrono_tz::Tz> {
    let Some(tz) = &s.timezone else {
        return Some(chrono_tz::UTC);
    };
    let parsed = tz.value.parse::<chrono_tz::Tz>().ok();
    if parsed.is_none() {
        problem(
            &tz.origin,
            format!(
                "window timezone {:?}: expected an IANA time zone such as Europe/Berlin or UTC",
                tz.value
            ),
        );
    }
    parsed
}

/// `*` (any run) and `?` (one character) globbing (the one matcher,
/// `manifest::access::glob_match`); stage names compare without case.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    if ignore_case {
        super::access::glob_match(&pattern.to_lowercase(), &text.to_lowercase())
    } else {
        super::access::glob_match(pattern, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: &str, line: usize) -> Located {
        Located {
            value: v.into(),
            origin: Origin {
                file: "m/modelsync.toml".into(),
                line,
                column: 12,
            },
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let bad = WindowSetting {
            kind: at("never", 2),
            schedule: at("61 * * * *", 3),
            duration: at("soon", 4),
            timezone: Some(at("Mars/Olympus", 5)),
            ..WindowSetting::default()
        };
        let problems = validate(&[bad]).expect_err("invalid");
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with("m/modelsync.toml:2:12: window kind \"never\""));
        assert!(lines[1].starts_with("m/modelsync.toml:3:12: window schedule"));
        assert!(lines[2].starts_with("m/modelsync.toml:4:12: window duration"));
        assert!(lines[3].starts_with("m/modelsync.toml:5:12: window timezone"));
    }

    #[test]
    fn a_valid_window_is_named_and_scoped() {
        let w = validate(&[WindowSetting {
            kind: at("deny", 2),
            schedule: at("0 17 * * FRI", 3),
            duration: at("64h", 4),
            targets: vec!["Production".into(), "champ*".into()],
            models: vec!["nba-*".into()],
            ..WindowSetting::default()
        }])
        .expect("valid");
        assert_eq!(w[0].name, "deny 0 17 * * FRI");
        assert_eq!(w[0].duration_ms, 64 * 3_600_000);
        assert_eq!(w[0].timezone, chrono_tz::UTC);
        assert!(w[0].applies("nba-x", "production", true));
        assert!(w[0].applies("nba-x", "champion", false));
        assert!(!w[0].applies("nba-x", "Staging", true));
        assert!(!w[0].applies("mlb", "champion", false));
        assert!(
            !w[0].applies("nba-x", "Champion", false),
            "aliases keep case"
        );
    }

    #[test]
    fn globs() {
        assert!(glob("*", "", false));
        assert!(glob("a*b?d", "axxbcd", false));
        assert!(!glob("a*b?d", "axxbd", false));
        assert!(glob("*-prod", "nba-prod", false));
        assert!(!glob("PROD", "prod", false));
        assert!(glob("PROD", "prod", true));
    }
}

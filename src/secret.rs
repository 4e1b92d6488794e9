//! Secrets: THE [`Secret`] type, and the process-wide set of secret values
//! modelsync was given, which every text it publishes is checked against.
//!
//! A secret is registered when it is read: [`register_env`] (once, at the
//! start of a command) registers the well-known variables ([`VARIABLES`],
//! and every `MODELSYNC_REGISTRY_<NAME>_TOKEN`/`_PASSWORD`); the other
//! secrets register as they are parsed (the variables `--…-secret-env`
//! names, a password in the registry, `--git` or `--leader-election` URI,
//! the path and query of a `--notify` URL). [`check`] then says whether a
//! text holds any of their values, naming the secret by its variable (or
//! flag), never by its value. The publication points call it once per
//! channel (stdout, saved plans, registry writes, the daemon's HTTP
//! answers, notifications) and refuse what would leak; logs cannot be
//! refused, so [`redact`] masks them instead.
//!
//! A value is looked for as it is and as each rendering escapes it (JSON,
//! Rust's `Debug`, HTML, Markdown tables), so a secret holding `"` or `\`
//! is found in a JSON document too. Values shorter than [`MIN_LEN`]
//! characters are not looked for (a warning says so): such a value is
//! likely to occur in ordinary text (a model named like the password) and
//! would refuse innocent output.
//!
//! No I/O other than reading the environment in [`register_env`] and
//! [`Secret::from_env`].

use std::borrow::Cow;
use std::fmt;
use std::sync::RwLock;

/// The shortest value looked for, in characters.
pub const MIN_LEN: usize = 8;

/// Variables that hold secrets wherever modelsync runs, registered by
/// [`register_env`] when set (besides `MODELSYNC_REGISTRY_<NAME>_TOKEN`
/// and `_PASSWORD`).
pub const VARIABLES: [&str; 7] = [
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MODELSYNC_GIT_TOKEN",
    "GITHUB_TOKEN",
    "PGPASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// A password, token or key. `Debug` shows `***`; only [`Secret::expose`]
/// gives the value, for the one place that sends it where it belongs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// A text holds a secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// The variable (or flag) the secret came from.
    pub name: String,
    /// Byte offset of the first occurrence in the text checked.
    pub at: usize,
}

/// One registered secret: its name and every form it is looked for in.
struct Known {
    name: String,
    forms: Vec<String>,
}

/// Every secret registered so far, and the values too short to be looked
/// for (each warned about once).
static KNOWN: RwLock<(Vec<Known>, Vec<String>)> = RwLock::new((Vec::new(), Vec::new()));

impl Secret {
    /// A secret known as `name` (a variable or a flag), registered.
    pub fn named(name: &str, value: impl Into<String>) -> Secret {
        let value = value.into();
        register(name, &value);
        Secret(value)
    }

    /// The secret in the environment variable `var` (unset or empty:
    /// `None`), registered under that name.
    pub fn from_env(var: &str) -> Option<Secret> {
        let value = std::env::var(var).ok().filter(|v| !v.is_empty())?;
        Some(Secret::named(var, value))
    }

    /// The value itself: only for where the secret is sent on purpose
    /// (an `Authorization` header, an HMAC key, a database login).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the value of the secret {}", self.name)
    }
}

impl std::error::Error for Leak {}

/// Registers the secrets of the well-known variables that are set
/// ([`VARIABLES`], `MODELSYNC_REGISTRY_<NAME>_TOKEN`/`_PASSWORD`).
pub fn register_env() {
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        if is_secret_variable(name) && !value.is_empty() {
            register(name, value);
        }
    }
}

/// Whether `name` is a variable [`register_env`] registers.
pub fn is_secret_variable(name: &str) -> bool {
    VARIABLES.contains(&name)
        || name
            .strip_prefix("MODELSYNC_REGISTRY_")
            .is_some_and(|rest| {
                rest.len() > "_TOKEN".len()
                    && (rest.ends_with("_TOKEN") || rest.ends_with("_PASSWORD"))
            })
}

/// Adds `value` to the secrets every publication is checked against,
/// known as `name`. A value registered before keeps its first name; one
/// shorter than [`MIN_LEN`] is not looked for (warned once).
pub fn register(name: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    if value.chars().count() < MIN_LEN {
        let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
        if known.1.iter().any(|v| v == value) {
            return;
        }
        known.1.push(value.to_string());
        // Logged once the lock is released: the log writer reads the set.
        drop(known);
        tracing::warn!(
            secret = name,
            "{name} is shorter than {MIN_LEN} characters: too short to be looked for in what modelsync publishes"
        );
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if known.0.iter().any(|k| k.forms[0] == value) {
        return;
    }
    known.0.push(Known {
        name: name.to_string(),
        forms: forms(value),
    });
}

/// `Ok` when `text` holds no registered secret, else the first one found
/// (the earliest in the text).
pub fn check(text: &str) -> Result<(), Leak> {
    match leaks(text).into_iter().min_by_key(|l| l.at) {
        Some(leak) => Err(leak),
        None => Ok(()),
    }
}

/// Every registered secret `text` holds (one [`Leak`] per secret, at its
/// first occurrence), in registration order.
pub fn leaks(text: &str) -> Vec<Leak> {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    known
        .0
        .iter()
        .filter_map(|k| {
            let at = k.forms.iter().filter_map(|f| text.find(f.as_str())).min()?;
            Some(Leak {
                name: k.name.clone(),
                at,
            })
        })
        .collect()
}

/// `text` with every registered secret (in every form) replaced by `***`:
/// for logs, which cannot be refused.
pub fn redact(text: &str) -> Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for form in known.0.iter().flat_map(|k| &k.forms) {
        if out.contains(form.as_str()) {
            out = Cow::Owned(out.replace(form.as_str(), "***"));
        }
    }
    out
}

/// The value as it is, then as JSON, Rust's `Debug`, HTML and Markdown
/// table cells write it (each only when it differs).
fn forms(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).expect("a string serializes");
    let debug = format!("{value:?}");
    let candidates = [
        value.to_string(),
        unquote(&json).to_string(),
        unquote(&debug).to_string(),
        html(value),
        markdown(value),
    ];
    let mut out: Vec<String> = Vec::new();
    for c in candidates {
        if !c.is_empty() && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// As maud (the status page) escapes text.
fn html(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// As the Markdown plan escapes a table cell.
fn markdown(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace('\r', "")
        .replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The set is process-wide: each test registers values of its own.

    #[test]
    fn a_registered_value_is_found_and_named_never_shown() {
        register("TEST_TOKEN_A", "tok-aaaa-1111-secret");
        let leak = check("description: tok-aaaa-1111-secret!").expect_err("a leak");
        assert_eq!(leak.name, "TEST_TOKEN_A");
        assert_eq!(leak.at, "description: ".len());
        assert_eq!(
            leak.to_string(),
            "the value of the secret TEST_TOKEN_A",
            "named by its variable"
        );
        assert!(!leak.to_string().contains("tok-aaaa"));
        assert!(check("description: tok-aaaa-1111-secre").is_ok());
        assert!(check("").is_ok());
    }

    #[test]
    fn escaped_forms_are_found_too() {
        let value = r#"p"w\d<&>|x-2222"#;
        register("TEST_PASSWORD_B", value);
        let json = serde_json::json!({ "description": value }).to_string();
        assert!(!json.contains(value), "JSON escapes it: {json}");
        assert_eq!(check(&json).expect_err("JSON form").name, "TEST_PASSWORD_B");
        let pretty = serde_json::to_string_pretty(&serde_json::json!([value])).expect("json");
        assert!(check(&pretty).is_err(), "{pretty}");
        assert!(check(&format!("{:?}", value)).is_err(), "Debug form");
        assert!(check(&html(value)).is_err(), "HTML form");
        assert!(check(&markdown(value)).is_err(), "Markdown form");
        let logged = format!("a {json} b");
        let masked = redact(&logged);
        assert!(check(&masked).is_ok(), "{masked}");
        assert!(masked.contains("***"));
    }

    #[test]
    fn short_values_are_not_looked_for() {
        register("TEST_SHORT", "abc1234");
        assert!(check("abc1234").is_ok(), "7 characters: not looked for");
        register("TEST_LONG_ENOUGH", "abc12345");
        assert!(check("x abc12345 y").is_err(), "8 characters are");
    }

    #[test]
    fn the_first_name_wins_and_debug_hides() {
        let s = Secret::named("TEST_FIRST", "same-value-3333");
        register("TEST_SECOND", "same-value-3333");
        assert_eq!(
            check("same-value-3333").expect_err("leak").name,
            "TEST_FIRST"
        );
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "same-value-3333");
    }

    #[test]
    fn redaction_masks_every_occurrence() {
        register("TEST_TOKEN_C", "tok-cccc-4444-secret");
        assert_eq!(
            redact("a tok-cccc-4444-secret b tok-cccc-4444-secret"),
            "a *** b ***"
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn well_known_variables() {
        for v in [
            "MLFLOW_TRACKING_TOKEN",
            "PGPASSWORD",
            "MODELSYNC_REGISTRY_DEV_TOKEN",
            "MODELSYNC_REGISTRY_DEV_PASSWORD",
        ] {
            assert!(is_secret_variable(v), "{v}");
        }
        for v in [
            "MODELSYNC_REGISTRY_DEV_USERNAME",
            "MODELSYNC_REGISTRY",
            "MODELSYNC_REGISTRY_TOKEN",
            "HOME",
        ] {
            assert!(!is_secret_variable(v), "{v}");
        }
    }
}

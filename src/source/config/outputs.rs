//! `[outputs]` (or `[[outputs]]`, several) in `modelsync.toml`: where the
//! promoted versions are written (issue 20). Read and checked here, every
//! problem at once with file, line and column; the settings themselves
//! are [`crate::outputs::Settings`].
//!
//! ```toml
//! [outputs]
//! repo = "https://github.com/acme/serving.git"   # https:// or file://
//! branch = "main"                                # default "main"
//! path = "kserve"                                # a file or a folder
//! mode = "commit"                                # or "pull-request"
//! author = "modelsync <modelsync@acme.example>"
//! ```

use serde::Deserialize;
use toml::Spanned;

use super::{SourceError, line_col, toml_error};
use crate::outputs::{Author, DEFAULT_AUTHOR, Mode, Settings};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    repo: Spanned<String>,
    #[serde(default)]
    branch: Option<Spanned<String>>,
    path: Spanned<String>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    #[serde(default)]
    author: Option<Spanned<String>>,
}

#[derive(Deserialize)]
struct Probe {
    outputs: Option<toml::Value>,
}

#[derive(Deserialize)]
struct One {
    outputs: Spanned<Written>,
}

#[derive(Deserialize)]
struct Many {
    outputs: Vec<Spanned<Written>>,
}

/// The outputs `text` (the file `path`) declares, checked.
pub fn parse(path: &str, text: &str) -> Result<Vec<Settings>, SourceError> {
    let probe: Probe = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    let written = match probe.outputs {
        None => return Ok(Vec::new()),
        Some(toml::Value::Table(_)) => {
            let one: One = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
            vec![one.outputs]
        }
        Some(toml::Value::Array(_)) => {
            let many: Many = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
            many.outputs
        }
        Some(_) => {
            return Err(SourceError::Config(format!(
                "{path}: outputs must be a table ([outputs]) or an array of tables ([[outputs]])"
            )));
        }
    };
    let mut errors = Vec::new();
    let mut settings: Vec<Settings> = Vec::new();
    for w in written {
        let at = |span: std::ops::Range<usize>| {
            let (l, c) = line_col(text, span.start);
            format!("{path}:{l}:{c}")
        };
        let origin = at(w.span());
        match check(w.into_inner(), &at) {
            Ok(mut s) => {
                s.origin = origin;
                if let Some(first) = settings.iter().find(|f| same_branch(f, &s)) {
                    errors.push(format!(
                        "{}: another output writes {} branch {} (at {}): put both paths under one folder, so that a pass makes one commit there",
                        s.origin, s.repo, s.branch, first.origin
                    ));
                } else {
                    settings.push(s);
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(SourceError::Config(errors.join("\n")))
    }
}

/// True when `a` and `b` write the same branch of the same repository.
pub fn same_branch(a: &Settings, b: &Settings) -> bool {
    a.repo == b.repo && a.branch == b.branch
}

fn check(
    w: Written,
    at: &dyn Fn(std::ops::Range<usize>) -> String,
) -> Result<Settings, Vec<String>> {
    let mut errors = Vec::new();
    let repo_at = at(w.repo.span());
    let repo = w.repo.into_inner();
    if let Some(why) = repo_problem(&repo) {
        errors.push(format!("{repo_at}: repo: {why}"));
    }
    let branch = match w.branch {
        None => "main".to_string(),
        Some(b) => {
            let b_at = at(b.span());
            let b = b.into_inner();
            if !git2::Reference::is_valid_name(&format!("refs/heads/{b}")) {
                errors.push(format!(
                    "{b_at}: branch {b:?} is not a valid git branch name"
                ));
            }
            b
        }
    };
    let path_at = at(w.path.span());
    let path = match crate::manifest::paths::named("", "", w.path.get_ref()) {
        Ok(p) => p,
        Err(escape) => {
            errors.push(format!(
                "{path_at}: path {:?}: {escape} (a path inside the outputs repository, relative to its top)",
                w.path.get_ref()
            ));
            String::new()
        }
    };
    let mode = match w.mode {
        None => Mode::Commit,
        Some(m) => Mode::parse(m.get_ref()).unwrap_or_else(|| {
            errors.push(format!(
                "{}: mode {:?}: expected \"commit\" or \"pull-request\"",
                at(m.span()),
                m.get_ref()
            ));
            Mode::Commit
        }),
    };
    let author = match w.author {
        None => Author::parse(DEFAULT_AUTHOR).expect("the default author is valid"),
        Some(a) => Author::parse(a.get_ref()).unwrap_or_else(|why| {
            errors.push(format!("{}: {why}", at(a.span())));
            Author::parse(DEFAULT_AUTHOR).expect("the default author is valid")
        }),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Settings {
        repo,
        branch,
        path,
        mode,
        author,
        origin: String::new(),
    })
}

/// Why modelsync cannot push to `repo`, if it cannot.
fn repo_problem(repo: &str) -> Option<String> {
    if let Some(why) = crate::source::transport::unsupported_transport(repo) {
        return Some(why.replacen("--git", "", 1).trim().to_string());
    }
    if crate::uri::without_userinfo(repo) != repo {
        return Some(
            "credentials do not belong in the URL: give the token in MODELSYNC_GIT_TOKEN".into(),
        );
    }
    let scheme = repo.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("https" | "http" | "file") => None,
        _ => Some(format!(
            "{repo:?}: modelsync pushes over https:// (token from MODELSYNC_GIT_TOKEN) or file://"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_with_defaults() {
        let s = parse(
            "m/modelsync.toml",
            "protect = []\n[outputs]\nrepo = \"file:///srv/serving.git\"\npath = \"./kserve/\"\n",
        )
        .expect("valid");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].repo, "file:///srv/serving.git");
        assert_eq!(
            (s[0].branch.as_str(), s[0].path.as_str()),
            ("main", "kserve")
        );
        assert_eq!(s[0].mode, Mode::Commit);
        assert_eq!(s[0].author.to_string(), DEFAULT_AUTHOR);
        assert_eq!(s[0].origin, "m/modelsync.toml:2:1");
    }

    #[test]
    fn several_outputs_as_an_array_of_tables() {
        let s = parse(
            "c.toml",
            "[[outputs]]\nrepo = \"https://g.example/a/s.git\"\npath = \"a\"\nmode = \"pull-request\"\nauthor = \"Bot <bot@example.com>\"\n\
             [[outputs]]\nrepo = \"https://g.example/a/s.git\"\nbranch = \"prod\"\npath = \"b/isvc.yaml\"\n",
        )
        .expect("valid");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].mode, Mode::PullRequest);
        assert_eq!(s[0].author.name, "Bot");
        assert_eq!(s[1].branch, "prod");
        assert_eq!(s[1].origin, "c.toml:6:1");
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let err = parse(
            "c.toml",
            "[outputs]\nrepo = \"git@github.com:a/b.git\"\nbranch = \"a..b\"\npath = \"../x\"\nmode = \"push\"\nauthor = \"nobody\"\n",
        )
        .unwrap_err()
        .to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 5, "{err}");
        assert!(lines[0].starts_with("c.toml:2:8: repo: "), "{err}");
        assert!(lines[1].starts_with("c.toml:3:10: branch"), "{err}");
        assert!(lines[2].starts_with("c.toml:4:8: path \"../x\""), "{err}");
        assert!(lines[3].starts_with("c.toml:5:8: mode \"push\""), "{err}");
        assert!(
            lines[4].starts_with("c.toml:6:10: author \"nobody\""),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_credentials_and_a_second_output_on_one_branch_are_refused() {
        let err = parse(
            "c.toml",
            "[outputs]\nrepo = \"file:///r\"\npath = \"a\"\nbranches = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("c.toml:4:1: "), "{err}");
        let err = parse(
            "c.toml",
            "[outputs]\nrepo = \"https://u:p@h/r.git\"\npath = \"a\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("MODELSYNC_GIT_TOKEN") && !err.contains("u:p"),
            "{err}"
        );
        let err = parse(
            "c.toml",
            "[[outputs]]\nrepo = \"file:///r\"\npath = \"a\"\n[[outputs]]\nrepo = \"file:///r\"\npath = \"b\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("c.toml:4:1: another output writes"),
            "{err}"
        );
        assert!(parse("c.toml", "outputs = 1\n").is_err());
    }
}

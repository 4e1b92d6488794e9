//! The approvers file `modelsync.toml` names (`approvers = "PATH"`, inside
//! the manifests root, git's allowed_signers format) and the signed
//! approval files under `approvals/` in each manifests root: checked as
//! written while validating ([`check_approvers`]), read and parsed through
//! the reader and lister the caller passes ([`resolve_approvals`]: the
//! shell passes `source::tree`'s, a saved plan its own files). Approval
//! files are read only when an approvers file is named. A file that is not
//! an approval record is a problem of the manifests, with file and line;
//! whether a well-formed record *counts* is the gate's question
//! (`plan::approvals`).

use std::collections::BTreeSet;

use super::super::approval::{self, Record};
use super::super::paths::{self, Escape};
use super::super::signers::AllowedSigners;
use super::super::{ApprovalFile, ApproversFile, DesiredState, Diagnostic, Origin, SourceFile};
use super::LoadOptions;

/// The approvers file as written, checked to stay inside the manifests
/// root of the `modelsync.toml` that names it (a problem is reported at
/// the setting).
pub(super) fn check_approvers(
    options: &LoadOptions,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ApproversFile> {
    let setting = options.approvers.as_ref()?;
    let config = &setting.origin.file;
    let root = paths::root_of(&options.roots, config);
    match paths::named(&root, config, &setting.path) {
        Ok(path) => Some(ApproversFile {
            path,
            root,
            origin: setting.origin.clone(),
            read: None,
        }),
        Err(escape) => {
            let message = match escape {
                Escape::Empty => "approvers must not be empty".to_string(),
                escape => format!("approvers {}: {escape}", setting.path),
            };
            diagnostics.push(Diagnostic {
                origin: setting.origin.clone(),
                message,
            });
            None
        }
    }
}

/// The manifests roots of `files` (each file's, as [`paths::root_of`]
/// finds it), where `approvals/` folders are looked for.
pub fn approval_roots(files: &[SourceFile], options: &LoadOptions) -> Vec<String> {
    let roots: BTreeSet<String> = files
        .iter()
        .map(|f| paths::root_of(&options.roots, &f.path))
        .collect();
    roots.into_iter().collect()
}

/// Names the files under a folder inside a manifests root: `(root, dir)`.
pub type Lister<'a> = dyn Fn(&str, &str) -> Result<Vec<String>, String> + 'a;

/// Reads the approvers file and, when it is named, every `*.approval`
/// file under `approvals/` in `roots`: `read(root, path)` reads a file
/// inside its root, `list(root, dir)` names the files under a folder
/// inside it (none when it does not exist). Every problem is reported.
pub fn resolve_approvals(
    state: &mut DesiredState,
    roots: &[String],
    read: &dyn Fn(&str, &str) -> Result<String, String>,
    list: &Lister<'_>,
) -> Result<(), Vec<Diagnostic>> {
    let Some(approvers) = state.approvals.approvers.as_mut() else {
        return Ok(());
    };
    let mut diagnostics = Vec::new();
    if approvers.read.is_none() {
        match read(&approvers.root, &approvers.path) {
            Ok(text) => match AllowedSigners::parse_lines(&text) {
                Ok(signers) => approvers.read = Some((text, signers)),
                Err(errors) => {
                    diagnostics.extend(errors.into_iter().map(|(line, message)| Diagnostic {
                        origin: at(&approvers.path, line),
                        message: format!("approvers file: {message}"),
                    }))
                }
            },
            Err(e) => diagnostics.push(Diagnostic {
                origin: approvers.origin.clone(),
                message: format!("cannot read the approvers file {}: {e}", approvers.path),
            }),
        }
    }
    for root in roots {
        let dir = join(root, approval::DIR);
        let found = match list(root, &dir) {
            Ok(found) => found,
            Err(e) => {
                diagnostics.push(Diagnostic {
                    origin: at(&dir, 0),
                    message: format!("cannot list the approval files: {e}"),
                });
                continue;
            }
        };
        let suffix = format!(".{}", approval::EXTENSION);
        for path in found.into_iter().filter(|p| p.ends_with(&suffix)) {
            match read(root, &path).map_err(|e| (0, format!("cannot read: {e}"))) {
                Ok(text) => match Record::parse(&text) {
                    Ok(record) => {
                        state
                            .approvals
                            .files
                            .insert(path, ApprovalFile { text, record });
                    }
                    Err(m) => diagnostics.push(Diagnostic {
                        origin: at(&path, m.line),
                        message: format!("not an approval record: {}", m.message),
                    }),
                },
                Err((line, message)) => diagnostics.push(Diagnostic {
                    origin: at(&path, line),
                    message,
                }),
            }
        }
    }
    if diagnostics.is_empty() {
        Ok(())
    } else {
        diagnostics.sort();
        Err(diagnostics)
    }
}

fn at(file: &str, line: usize) -> Origin {
    Origin {
        file: file.into(),
        line: line.max(1),
        column: 1,
    }
}

fn join(root: &str, dir: &str) -> String {
    if root.is_empty() {
        dir.to_string()
    } else {
        format!("{}/{dir}", root.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{ApproversSetting, LoadOptions, load_with};
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdl9wS4t4ym/ZEQcvjHAz2ZGCzlRpjS3aUbY9nHDvJs";

    fn model(gate: &str) -> SourceFile {
        let text = format!(
            "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: m\nspec:\n  stages: {{Production: 1}}\n  gates:\n    Production:\n      - approvals: {gate}\n"
        );
        SourceFile {
            path: "m/m.yaml".into(),
            contents: text.into_bytes(),
        }
    }

    fn options(approvers: Option<&str>) -> LoadOptions {
        LoadOptions {
            roots: vec!["m".into()],
            approvers: approvers.map(|path| ApproversSetting {
                origin: Origin {
                    file: "m/modelsync.toml".into(),
                    line: 1,
                    column: 13,
                },
                path: path.into(),
            }),
            ..LoadOptions::default()
        }
    }

    fn problems(gate: &str, approvers: Option<&str>) -> Vec<String> {
        match load_with(&[model(gate)], &options(approvers)) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn an_approvals_gate_is_checked_as_written() {
        assert_eq!(
            problems("{required: 2, from: [alice, bob]}", Some("approvers")),
            Vec::<String>::new()
        );
        assert_eq!(
            problems("{from: any}", Some("approvers")),
            Vec::<String>::new()
        );
        let cases = [
            (
                "{from: [alice]}",
                None,
                "m/m.yaml:9:20: an approvals gate needs an approvers file",
            ),
            (
                "{required: 3, from: [alice, bob]}",
                Some("a"),
                "required: 3 approvals from 2 principals can never be given",
            ),
            (
                "{required: 0, from: any}",
                Some("a"),
                "required: 0 is not a positive number",
            ),
            (
                "{from: [alice, alice]}",
                Some("a"),
                "from: alice is listed twice",
            ),
            ("{from: []}", Some("a"), "from: list at least one principal"),
            (
                "{from: [alice smith]}",
                Some("a"),
                "no spaces, commas or quotes",
            ),
            (
                "{from: everyone}",
                Some("a"),
                "write a list of principals ([alice, bob]) or any",
            ),
            (
                "{from: any}",
                Some("../keys"),
                "m/modelsync.toml:1:13: approvers ../keys: leads outside the manifests root m",
            ),
            (
                "{from: any}",
                Some("/etc/ssh/keys"),
                "m/modelsync.toml:1:13: approvers /etc/ssh/keys: an absolute path",
            ),
        ];
        for (gate, approvers, says) in cases {
            let found = problems(gate, approvers);
            assert!(found.iter().any(|p| p.contains(says)), "{gate}: {found:?}");
        }
    }

    #[test]
    fn the_approvers_file_and_approval_files_are_read_through_the_callers_reader() {
        let mut state =
            load_with(&[model("{from: any}")], &options(Some("approvers"))).expect("valid");
        let files = BTreeMap::from([
            ("m/approvers", format!("alice {KEY}\nbob {KEY}\n")),
            ("m/approvals/a.approval", "not a record\n".to_string()),
            ("m/approvals/notes.txt", "ignored".to_string()),
        ]);
        let read = |_: &str, path: &str| {
            files
                .get(path)
                .cloned()
                .ok_or_else(|| "no such file".to_string())
        };
        let list = |_: &str, dir: &str| -> Result<Vec<String>, String> {
            Ok(files
                .keys()
                .filter(|p| p.starts_with(&format!("{dir}/")))
                .map(|p| p.to_string())
                .collect())
        };
        let err =
            resolve_approvals(&mut state, &["m".into()], &read, &list).expect_err("a bad file");
        let shown: Vec<String> = err.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "m/approvals/a.approval:1:1: not an approval record: no statement followed by a signature (a line -----BEGIN SSH SIGNATURE----- after the statement)"
            ]
        );
        assert!(state.approvals.signers().is_some_and(|s| s.lists("bob")));

        // A missing approvers file and a bad line are problems too.
        let mut state = load_with(&[model("{from: any}")], &options(Some("nope"))).expect("valid");
        let err = resolve_approvals(&mut state, &["m".into()], &read, &list).expect_err("missing");
        let missing = "m/modelsync.toml:1:13: cannot read the approvers file m/nope";
        assert!(
            err.iter().any(|d| d.to_string().starts_with(missing)),
            "{err:?}"
        );
        let bad = BTreeMap::from([("m/approvers", "alice\n".to_string())]);
        let read_bad = |_: &str, path: &str| bad.get(path).cloned().ok_or_else(|| "no".to_string());
        let mut state =
            load_with(&[model("{from: any}")], &options(Some("approvers"))).expect("valid");
        let err = resolve_approvals(&mut state, &["m".into()], &read_bad, &|_, _| Ok(Vec::new()))
            .expect_err("bad line");
        assert_eq!(
            err[0].to_string(),
            "m/approvers:1:1: approvers file: no public key after the principals"
        );
    }
}

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
        file: file.to_string(),
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

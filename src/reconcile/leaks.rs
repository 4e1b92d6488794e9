//! The pass's refusal to carry a secret (`crate::secret`): manifests (and
//! the template files they name) that hold the value of a secret
//! modelsync was given are invalid, each occurrence a diagnostic with
//! file, line and column; a plan that would show one (a value the
//! registry holds, an escape the manifest text hid) stops the pass before
//! it is shown, saved or applied.

use crate::manifest::{DesiredPromptVersion, DesiredState};
use crate::manifest::{Diagnostic, Origin, SourceFile, Template};
use crate::plan::Plan;
use crate::secret::{self, Leak};

/// Every secret in the manifest files: one diagnostic per file and secret,
/// where it first occurs.
pub fn in_files(files: &[SourceFile]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for f in files {
        let text = String::from_utf8_lossy(&f.contents);
        for leak in secret::leaks(&text) {
            let (line, column) = line_column(&text, leak.at);
            out.push(Diagnostic {
                origin: Origin {
                    file: f.path.as_str().into(),
                    line,
                    column,
                },
                message: message("this manifest", &leak),
            });
        }
    }
    out
}

/// Every secret in the template files the prompts name, reported where
/// `templateFile` was written.
pub fn in_templates(desired: &DesiredState) -> Vec<Diagnostic> {
    let versions = desired.prompts.values().flat_map(|p| p.versions.values());
    versions.flat_map(template_leaks).collect()
}

fn template_leaks(v: &DesiredPromptVersion) -> Vec<Diagnostic> {
    let Template::File {
        path,
        origin,
        text: Some(text),
        ..
    } = &v.template
    else {
        return Vec::new();
    };
    secret::leaks(text)
        .into_iter()
        .map(|leak| Diagnostic {
            origin: origin.clone(),
            message: message(&format!("templateFile {path}"), &leak),
        })
        .collect()
}

/// The manifests' own leaks joined to how loading them went: all
/// problems at once.
pub fn refuse(
    loaded: Result<DesiredState, Vec<Diagnostic>>,
    mut found: Vec<Diagnostic>,
) -> Result<DesiredState, Vec<Diagnostic>> {
    match loaded {
        Ok(desired) => {
            found.extend(in_templates(&desired));
            if found.is_empty() {
                return Ok(desired);
            }
            found.sort();
            Err(found)
        }
        Err(mut diags) => {
            diags.append(&mut found);
            diags.sort();
            Err(diags)
        }
    }
}

/// `Err` when the plan (as its JSON rendering and a saved plan hold it)
/// carries a secret.
pub fn in_plan(plan: &Plan) -> Result<(), Leak> {
    secret::check(&crate::plan::render::json(plan))
}

fn message(what: &str, leak: &Leak) -> String {
    format!(
        "{what} holds {leak}; modelsync never publishes a secret (in a plan, a saved plan, \
         a registry write or the daemon's status)"
    )
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_in_a_manifest_is_a_diagnostic_at_its_place() {
        secret::register("TEST_LEAKS_TOKEN", "tok-leaks-7777-abcdef");
        let files = [SourceFile {
            path: "m/a.yaml".into(),
            contents: "kind: X\nspec:\n  description: \"tok-leaks-7777-abcdef\"\n".into(),
        }];
        let found = in_files(&files);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].origin,
            Origin {
                file: "m/a.yaml".into(),
                line: 3,
                column: 17
            }
        );
        assert!(found[0].message.contains("TEST_LEAKS_TOKEN"), "{found:?}");
        assert!(!found[0].message.contains("tok-leaks"), "{found:?}");
        let clean = [SourceFile {
            path: "m/b.yaml".into(),
            contents: b"kind: X\n".to_vec(),
        }];
        assert!(in_files(&clean).is_empty());
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_column("ab\nçé-x", 7), (2, 3));
        assert_eq!(line_column("x", 0), (1, 1));
    }
}

//! The checks of `kind: Prompt` documents, and reading `templateFile`s.

use std::collections::BTreeMap;

use super::super::paths::{self, Escape};
use super::super::schema::{PromptSpec, PromptVersionSpec};
use super::super::yaml::Located;
use super::super::{DesiredPrompt, DesiredPromptVersion, DesiredState, Diagnostic, Template};
use super::rules::handle_problem;
use super::{Ctx, check_tags};
use crate::naming::{alias_problem, description_problem, tag_value_problem};

/// Checks one prompt document and adds it to `state`.
pub(super) fn check_prompt(
    ctx: &mut Ctx<'_>,
    state: &mut DesiredState,
    name: &Located<String>,
    spec: &PromptSpec,
) {
    if !super::name_ok(ctx, name) {
        return;
    }
    let first = state
        .prompts
        .get(&name.value)
        .map(|p| ("prompt", p.origin.clone()))
        .or_else(|| {
            state
                .models
                .get(&name.value)
                .map(|m| ("model", m.origin.clone()))
        });
    if let Some((what, at)) = first {
        let message = format!("\"{}\" is already declared as a {what} at {at}", name.value);
        ctx.error(name, message);
        return;
    }
    let mut versions = BTreeMap::new();
    for (handle, v) in spec.versions.iter() {
        if let Some(problem) = handle_problem(&handle.value) {
            ctx.error(handle, problem);
            continue;
        }
        if let Some(version) = check_version(ctx, handle, v) {
            versions.insert(handle.value.clone(), version);
        }
    }
    let mut aliases = BTreeMap::new();
    for (alias, target) in spec.aliases.iter() {
        if let Some(problem) = alias_problem(&alias.value) {
            ctx.error(alias, problem);
            continue;
        }
        if !spec.versions.iter().any(|(h, _)| h.value == target.value) {
            let message = format!(
                "alias \"{}\" names \"{}\", which is not a handle in spec.versions",
                alias.value, target.value
            );
            ctx.error(target, message);
            continue;
        }
        aliases.insert(alias.value.clone(), target.value.clone());
    }
    let prompt = DesiredPrompt {
        name: name.value.clone(),
        origin: ctx.origin(name),
        versions,
        aliases,
    };
    state.prompts.insert(name.value.clone(), prompt);
}

fn check_version(
    ctx: &mut Ctx<'_>,
    handle: &Located<String>,
    v: &PromptVersionSpec,
) -> Option<DesiredPromptVersion> {
    let template = match (&v.template, &v.template_file) {
        (Some(_), Some(file)) => {
            let message = format!(
                "version \"{}\": give template or templateFile, not both",
                handle.value
            );
            ctx.error(file, message);
            return None;
        }
        (None, None) => {
            let message = format!(
                "version \"{}\": a prompt version needs template or templateFile",
                handle.value
            );
            ctx.error(handle, message);
            return None;
        }
        (Some(text), None) => {
            if text.value.is_empty() {
                ctx.error(text, "template must not be empty".to_string());
            } else if let Some(problem) = tag_value_problem(&text.value) {
                ctx.error(text, format!("template: {problem}"));
            }
            Template::Text(text.value.clone())
        }
        (None, Some(file)) => {
            let root = paths::root_of(&ctx.options.roots, &ctx.file);
            match paths::named(&root, &ctx.file, &file.value) {
                Ok(path) => Template::File {
                    path,
                    root,
                    origin: ctx.origin(file),
                    text: None,
                },
                Err(Escape::Empty) => {
                    ctx.error(file, "templateFile must not be empty".to_string());
                    return None;
                }
                Err(escape) => {
                    ctx.error(file, format!("templateFile {}: {escape}", file.value));
                    return None;
                }
            }
        }
    };
    if let Some(m) = &v.commit_message
        && let Some(problem) = description_problem(&m.value)
    {
        ctx.error(m, problem);
    }
    Some(DesiredPromptVersion {
        handle: handle.value.clone(),
        origin: ctx.origin(handle),
        template,
        commit_message: v.commit_message.as_ref().map(|m| m.value.clone()),
        tags: check_tags(ctx, &v.tags, tag_value_problem),
    })
}

/// Reads every `templateFile` with `read(root, path)` (the shell passes
/// `source::tree::read`, a saved plan its [`super::super::paths::Snapshot`]);
/// a file that cannot be read (also: a link leading out of the root), or
/// whose text is empty or too long, is a diagnostic at its `templateFile`.
pub fn resolve_templates(
    state: &mut DesiredState,
    read: &dyn Fn(&str, &str) -> Result<String, String>,
) -> Result<(), Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    for prompt in state.prompts.values_mut() {
        for version in prompt.versions.values_mut() {
            let Template::File {
                path,
                root,
                origin,
                text: None,
            } = &version.template
            else {
                continue;
            };
            let problem = match read(root, path) {
                Ok(text) if text.is_empty() => format!("templateFile {path} is empty"),
                Ok(text) => match tag_value_problem(&text) {
                    Some(p) => format!("templateFile {path}: {p}"),
                    None => {
                        version.template = Template::File {
                            path: path.clone(),
                            root: root.clone(),
                            origin: origin.clone(),
                            text: Some(text),
                        };
                        continue;
                    }
                },
                Err(e) => format!("cannot read templateFile {path}: {e}"),
            };
            diagnostics.push(Diagnostic {
                origin: origin.clone(),
                message: problem,
            });
        }
    }
    if diagnostics.is_empty() {
        Ok(())
    } else {
        diagnostics.sort();
        Err(diagnostics)
    }
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::*;
    use crate::manifest::SourceFile;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.to_string(),
            contents: text.as_bytes().to_vec(),
        }
    }

    const PROMPT: &str = "apiVersion: modelsync/v1\nkind: Prompt\nmetadata:\n  name: summarize\nspec:\n  versions:\n    v1:\n      template: \"Summarize {{text}}\"\n      commitMessage: first\n      tags: {team: nlp}\n    v2:\n      templateFile: tpl/v2.txt\n  aliases:\n    production: v1\n    staging: v2\n";

    #[test]
    fn prompt_resolves_and_reads_template_files() {
        let mut state = load(&[file("prompts/s.yaml", PROMPT)]).expect("valid");
        let p = &state.prompts["summarize"];
        assert_eq!(p.origin.to_string(), "prompts/s.yaml:4:9");
        assert_eq!(p.aliases["production"], "v1");
        let v1 = &p.versions["v1"];
        assert_eq!(v1.template.text(), Some("Summarize {{text}}"));
        assert_eq!(v1.commit_message.as_deref(), Some("first"));
        assert_eq!(v1.tags["team"], "nlp");
        let Template::File { path, origin, .. } = &p.versions["v2"].template else {
            panic!("v2 is a file");
        };
        assert_eq!(path, "prompts/tpl/v2.txt");
        assert_eq!(origin.to_string(), "prompts/s.yaml:12:21");
        let read = |root: &str, p: &str| {
            assert_eq!(root, "prompts", "the manifest's folder, without roots");
            if p == "prompts/tpl/v2.txt" {
                Ok("Summarize {{text}} in {{n}} words".to_string())
            } else {
                Err("No such file or directory".to_string())
            }
        };
        resolve_templates(&mut state, &read).expect("readable");
        assert_eq!(
            state.prompts["summarize"].versions["v2"].template.text(),
            Some("Summarize {{text}} in {{n}} words")
        );
        assert!(state.models.is_empty());
    }

    #[test]
    fn unreadable_template_file_is_located() {
        let mut state = load(&[file("prompts/s.yaml", PROMPT)]).expect("valid");
        let read = |_: &str, _: &str| Err("No such file or directory".to_string());
        let diags = resolve_templates(&mut state, &read).expect_err("unreadable");
        assert_eq!(
            diags[0].to_string(),
            "prompts/s.yaml:12:21: cannot read templateFile prompts/tpl/v2.txt: No such file or directory"
        );
    }

    /// Paths out of the manifests root are refused as written, before
    /// anything is read, each at its `templateFile`.
    #[test]
    fn template_files_outside_the_root_are_located() {
        let options = crate::manifest::validate::LoadOptions {
            roots: vec!["m".to_string()],
            ..Default::default()
        };
        let mut diags = Vec::new();
        for path in [
            "../outside.txt",
            "/etc/passwd",
            "/proc/self/environ",
            "tpl/../../x",
        ] {
            let text = PROMPT.replace("tpl/v2.txt", path);
            let got = crate::manifest::validate::load_with(&[file("m/s.yaml", &text)], &options)
                .expect_err(path);
            diags.push(got[0].to_string());
        }
        insta::assert_snapshot!(diags.join("\n"), @r"
        m/s.yaml:12:21: templateFile ../outside.txt: leads outside the manifests root m; a manifest may only read files inside it
        m/s.yaml:12:21: templateFile /etc/passwd: an absolute path; a manifest may only read files inside its manifests root m, named relative to the manifest
        m/s.yaml:12:21: templateFile /proc/self/environ: an absolute path; a manifest may only read files inside its manifests root m, named relative to the manifest
        m/s.yaml:12:21: templateFile tpl/../../x: leads outside the manifests root m; a manifest may only read files inside it
        ");
        let inside = PROMPT.replace("tpl/v2.txt", "sub/../tpl/v2.txt");
        let state =
            crate::manifest::validate::load_with(&[file("m/sub/s.yaml", &inside)], &options)
                .expect("inside the root");
        let Template::File { path, root, .. } = &state.prompts["summarize"].versions["v2"].template
        else {
            panic!("a file");
        };
        assert_eq!((path.as_str(), root.as_str()), ("m/sub/tpl/v2.txt", "m"));
    }

    #[test]
    fn prompt_and_model_cannot_share_a_name() {
        let model =
            "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: summarize\n";
        let diags = load(&[file("a.yaml", PROMPT), file("b.yaml", model)]).expect_err("clash");
        assert_eq!(
            diags[0].to_string(),
            "b.yaml:4:9: \"summarize\" is already declared as a prompt at a.yaml:4:9"
        );
    }
}

//! `modelsync validate`: schema and semantic checks, no registry.

use serde_json::json;

use super::args::{OutputFormat, ValidateArgs};
use super::common::{default_paths, load_options, print};
use super::{Exit, GlobalArgs};

pub fn run(_g: &GlobalArgs, a: ValidateArgs) -> anyhow::Result<Exit> {
    let paths = default_paths(&a.paths);
    let files = crate::source::read_paths(&paths)?;
    let result = crate::reconcile::load(&files, &load_options(&paths, &a.protect)?);
    if a.format == OutputFormat::Json {
        let diags = result.as_ref().err().cloned().unwrap_or_default();
        let count = |f: fn(&crate::manifest::DesiredState) -> usize| result.as_ref().ok().map(f);
        let body = json!({
            "valid": result.is_ok(),
            "files": files.len(),
            "models": count(|d| d.models.len()),
            "experiments": count(|d| d.experiments.len()),
            "prompts": count(|d| d.prompts.len()),
            "access_policies": count(|d| d.policies.len()),
            "diagnostics": diags.iter().map(|d| json!({
                "file": d.origin.file, "line": d.origin.line,
                "column": d.origin.column, "message": d.message,
            })).collect::<Vec<_>>(),
        });
        print(&format!("{}\n", serde_json::to_string_pretty(&body)?))?;
        return Ok(if result.is_ok() {
            Exit::Ok
        } else {
            Exit::Error
        });
    }
    match result {
        Ok(desired) => {
            let policies = match desired.policies.len() {
                0 => String::new(),
                n => format!(", {n} access polic{}", if n == 1 { "y" } else { "ies" }),
            };
            print(&format!(
                "Valid: {} file(s), {} model(s), {} experiment(s), {} prompt(s){policies}.\n",
                files.len(),
                desired.models.len(),
                desired.experiments.len(),
                desired.prompts.len()
            ))?;
            Ok(Exit::Ok)
        }
        Err(diags) => {
            // For `validate` the diagnostics are the data: stdout, greppable.
            let lines: String = diags.iter().map(|d| format!("{d}\n")).collect();
            print(&lines)?;
            crate::logging::error(&format!(
                "{} problem{} found in the manifests",
                diags.len(),
                if diags.len() == 1 { "" } else { "s" }
            ));
            Ok(Exit::Error)
        }
    }
}

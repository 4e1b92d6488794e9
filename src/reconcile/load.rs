//! Loading manifests: validation (the core) over files the shell parsed
//! side by side.

use crate::manifest::validate::{self, LoadOptions, Parsed};
use crate::manifest::{DesiredState, Diagnostic, SourceFile};

/// Validates manifest files into a desired state, reading the files they
/// name — templates, the approvers file, the approval files — from
/// `options.tree` inside their roots (`source::tree`, the one reader: a
/// git commit's tree has no fallback to the host). Manifests (or template
/// files) that hold a secret's value are invalid too (`leaks.rs`).
pub fn load(files: &[SourceFile], options: &LoadOptions) -> Result<DesiredState, Vec<Diagnostic>> {
    super::leaks::refuse(
        load_unchecked(files, options),
        super::leaks::in_files(files),
    )
}

fn load_unchecked(
    files: &[SourceFile],
    options: &LoadOptions,
) -> Result<DesiredState, Vec<Diagnostic>> {
    use crate::source::tree;
    let mut desired = validate::load_parsed_by(files, options, &side_by_side)?;
    let read = |root: &str, path: &str| tree::read(&options.tree, root, path);
    validate::resolve_templates(&mut desired, &read)?;
    let roots = validate::approval_roots(files, options);
    validate::resolve_approvals(&mut desired, &roots, &read, &|root, dir| {
        tree::list(&options.tree, root, dir)
    })?;
    Ok(desired)
}

/// Each file of a run parsed ([`validate::parse`], pure), over the
/// available cores in contiguous parts of the run (this thread parses the
/// last part); `out[i]` is the parse of `run[i]`. Parsing is most of a
/// large load (10,000 files); the checks that relate files to each other
/// stay in the core, in path order.
fn side_by_side(run: &[&SourceFile]) -> Vec<Parsed> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = run.len().div_ceil(threads).max(SIDE_BY_SIDE_FROM);
    let parse = |files: &[&SourceFile]| files.iter().map(|f| validate::parse(f)).collect();
    let mut parts = run.chunks(part);
    let Some(last) = parts.next_back() else {
        return Vec::new();
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = parts.map(|p| scope.spawn(move || parse(p))).collect();
        let mine: Vec<Parsed> = parse(last);
        let mut out: Vec<Parsed> = Vec::with_capacity(run.len());
        for t in others {
            out.extend(t.join().expect("a manifest parse panicked"));
        }
        out.extend(mine);
        out
    })
}

/// Fewer files than this are not handed to another thread.
const SIDE_BY_SIDE_FROM: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    fn file(i: usize, broken: bool) -> SourceFile {
        // Files out of path order, a duplicate name across two of them and
        // broken ones among them: the order of the checks shows.
        let name = if i == 7 { 3 } else { i };
        let spec = if broken {
            "  versions: ["
        } else {
            "  versions:\n    v1: {version: 1}"
        };
        SourceFile {
            path: format!("m/{:04}.yaml", 5_000 - i),
            contents: format!(
                "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: m{name}\nspec:\n{spec}\n"
            )
            .into_bytes(),
        }
    }

    #[test]
    fn files_parsed_side_by_side_load_as_one_by_one() {
        for (count, broken) in [(3, 0), (300, 0), (1_100, 0), (1_100, 5), (300, 17)] {
            let files: Vec<SourceFile> = (0..count)
                .map(|i| file(i, broken > 0 && i % broken == 0))
                .collect();
            let options = LoadOptions::default();
            let run = |f: &[&SourceFile]| side_by_side(f).len();
            assert_eq!(run(&files.iter().collect::<Vec<_>>()), count);
            let one_by_one = validate::load_with(&files, &options);
            let side = validate::load_parsed_by(&files, &options, &side_by_side);
            assert_eq!(side, one_by_one, "{count} files, every {broken}th broken");
        }
    }
}

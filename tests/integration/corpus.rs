//! Every broken manifest in `tests/corpus/broken/` makes `apply` exit 1
//! with its expected diagnostics, and writes nothing to the registry.

use std::path::Path;

use crate::support::cli::Workdir;

const SEED: &str = r#"apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: seed
spec:
  versions:
    one: {source: "s3://bucket/seed/1"}
  stages: {Production: one}
"#;

#[test]
fn broken_manifests_are_reported_and_nothing_is_written() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/broken");
    let w = Workdir::new();
    w.write("seed/seed.yaml", SEED);
    assert_eq!(w.run(&["apply", "seed"]).code, 0);
    let before = std::fs::read(w.registry_file()).expect("registry");
    let mut entries: Vec<_> = std::fs::read_dir(&corpus)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 20, "corpus too small: {}", entries.len());
    for yaml in entries {
        let name = yaml
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let dir = format!("broken-{name}");
        std::fs::create_dir_all(w.path().join(&dir)).expect("mkdir");
        std::fs::copy(&yaml, w.path().join(&dir).join(&name)).expect("copy");
        // Each broken file next to a valid one: the valid one must not be
        // applied either.
        w.write(
            &format!("{dir}/valid.yaml"),
            &SEED.replace("name: seed", "name: other"),
        );
        let run = w.run(&["apply", &dir]);
        assert_eq!(run.code, 1, "{name}: {run:?}");
        let expected = std::fs::read_to_string(yaml.with_extension("expected")).expect("expected");
        for line in expected.lines() {
            let line = line.replace("broken/", &format!("{dir}/"));
            assert!(
                run.stderr.contains(&line),
                "{name}: wanted {line:?} in {run:?}"
            );
        }
        assert_eq!(
            std::fs::read(w.registry_file()).expect("registry"),
            before,
            "{name}: the registry was written"
        );
    }
}

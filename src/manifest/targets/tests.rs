use super::*;
use crate::manifest::validate::load;

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.to_string(),
        contents: text.as_bytes().to_vec(),
    }
}

fn model(name: &str, alias: &str) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    a: {{version: 1}}\n  aliases:\n    {alias}: a\n"
    )
}

fn experiment(name: &str, team: &str) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: Experiment\nmetadata:\n  name: {name}\nspec:\n  tags: {{team: {team}}}\n"
    )
}

const PROMPT: &str = "apiVersion: modelsync/v1\nkind: Prompt\nmetadata:\n  name: summarize\nspec:\n  versions:\n    v1:\n      templateFile: tpl/v1.txt\n  aliases:\n    production: v1\n";

/// m/a.yaml holds models a and b, m/c.yaml model c and experiment e,
/// m/p.yaml the prompt `summarize`.
fn files() -> Vec<SourceFile> {
    vec![
        file(
            "m/a.yaml",
            &format!("{}---\n{}", model("a", "champion"), model("b", "champion")),
        ),
        file(
            "m/c.yaml",
            &format!("{}---\n{}", model("c", "champion"), experiment("e", "ml")),
        ),
        file("m/p.yaml", PROMPT),
    ]
}

fn by_patterns(patterns: &[&str]) -> Result<Selection, String> {
    let files = files();
    let desired = load(&files).expect("valid");
    let selector = Selector {
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
        changed: None,
        named: BTreeSet::new(),
    };
    select(&selector, &files, &desired)
}

fn since(changed: Vec<ChangedFile>, config: Vec<String>) -> Selection {
    let files = files();
    let desired = load(&files).expect("valid");
    let selector = Selector {
        patterns: vec![],
        changed: Some(Changes {
            since: "main".into(),
            files: changed,
            config,
        }),
        named: BTreeSet::new(),
    };
    select(&selector, &files, &desired).expect("selects")
}

fn changed(path: &str, before: Option<&str>) -> ChangedFile {
    ChangedFile {
        path: path.to_string(),
        before: before.map(|b| b.as_bytes().to_vec()),
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn patterns_select_declared_models_and_prompts_by_name_or_glob() {
    let s = by_patterns(&["a"]).expect("a");
    assert_eq!(s.targets.models, set(&["a"]));
    assert!(s.targets.experiments.is_empty());
    let s = by_patterns(&["?", "summ*"]).expect("globs");
    assert_eq!(s.targets.models, set(&["a", "b", "c", "summarize"]));
}

#[test]
fn a_pattern_matching_nothing_is_an_error_naming_it() {
    let err = by_patterns(&["a", "zz*", "e"]).expect_err("no match");
    assert_eq!(
        err,
        "--model \"zz*\", \"e\" matches no declared model or prompt (4 declared: a, b, c, summarize)"
    );
}

#[test]
fn a_changed_document_selects_only_its_model() {
    let before = format!("{}---\n{}", model("a", "champion"), model("b", "old"));
    let s = since(vec![changed("m/a.yaml", Some(&before))], vec![]);
    assert_eq!(s.targets.models, set(&["b"]));
    assert!(s.gone.is_empty());
}

#[test]
fn comments_and_formatting_are_not_changes() {
    let before = format!(
        "# the first model\n{}---\n{}",
        model("a", "champion").replace("a: {version: 1}", "a:\n      version: 1"),
        model("b", "champion")
    );
    let s = since(vec![changed("m/a.yaml", Some(&before))], vec![]);
    assert_eq!(s.targets, Targets::default());
}

#[test]
fn added_removed_and_moved_documents() {
    // c.yaml is new; a and b moved out of an old file that also held d.
    let old = format!(
        "{}---\n{}---\n{}",
        model("a", "champion"),
        model("b", "champion"),
        model("d", "champion")
    );
    let s = since(
        vec![
            changed("m/old.yaml", Some(&old)),
            changed("m/a.yaml", None),
            changed("./m/c.yaml", None),
        ],
        vec![],
    );
    assert_eq!(s.targets.models, set(&["c"]));
    assert_eq!(s.targets.experiments, set(&["e"]));
    assert_eq!(s.gone, set(&["d"]), "a deleted document is reported");
}

#[test]
fn an_unreadable_old_version_selects_every_document_of_the_file() {
    let s = since(vec![changed("m/a.yaml", Some("a: [unclosed"))], vec![]);
    assert_eq!(s.targets.models, set(&["a", "b"]));
}

#[test]
fn template_and_config_changes() {
    let s = since(vec![changed("m/tpl/v1.txt", Some("old"))], vec![]);
    assert_eq!(s.targets.models, set(&["summarize"]));
    let s = since(vec![changed("m/notes.md", Some("old"))], vec![]);
    assert_eq!(s.targets, Targets::default(), "other files select nothing");
    let s = since(vec![], vec!["m/modelsync.toml".into()]);
    assert_eq!(s.targets.models, set(&["a", "b", "c", "summarize"]));
    assert_eq!(s.targets.experiments, set(&["e"]));
}

#[test]
fn patterns_and_changes_together_select_what_both_do() {
    let files = files();
    let desired = load(&files).expect("valid");
    let before = format!("{}---\n{}", model("a", "x"), model("b", "y"));
    let selector = Selector {
        patterns: vec!["b*".into(), "c".into()],
        changed: Some(Changes {
            since: "main".into(),
            files: vec![changed("m/a.yaml", Some(&before))],
            config: vec![],
        }),
        named: BTreeSet::new(),
    };
    let s = select(&selector, &files, &desired).expect("selects");
    assert_eq!(s.targets.models, set(&["b"]));
}

#[test]
fn narrowing_keeps_only_the_targets() {
    let desired = load(&files()).expect("valid");
    let targets = Targets {
        models: set(&["b", "summarize"]),
        experiments: BTreeSet::new(),
    };
    let narrowed = desired.clone().narrowed(&targets);
    assert_eq!(narrowed.models.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(narrowed.prompts.keys().collect::<Vec<_>>(), ["summarize"]);
    assert!(narrowed.experiments.is_empty());
    assert_eq!(narrowed.targets, Some(targets));
    assert_eq!(
        narrowed.digest, desired.digest,
        "the manifests are the same"
    );
}

#[test]
fn models_named_by_events_are_targeted_when_declared() {
    let files = files();
    let desired = load(&files).expect("valid");
    let named = |names: &[&str], changed: Option<Changes>| {
        let selector = Selector {
            patterns: vec![],
            changed,
            named: names.iter().map(|n| n.to_string()).collect(),
        };
        select(&selector, &files, &desired).expect("selects")
    };
    let s = named(&["b", "summarize", "not-declared"], None);
    assert_eq!(s.targets.models, set(&["b", "summarize"]));
    assert!(s.targets.experiments.is_empty() && s.gone.is_empty());
    assert!(
        named(&["not-declared"], None).targets.models.is_empty(),
        "an undeclared name targets nothing (not everything)"
    );
    let before = format!("{}---\n{}", model("a", "x"), model("b", "champion"));
    let changes = Changes {
        since: "main".into(),
        files: vec![changed("m/a.yaml", Some(&before))],
        config: vec![],
    };
    let both = named(&["c"], Some(changes));
    assert_eq!(both.targets.models, set(&["a", "c"]), "changed ∪ named");
}

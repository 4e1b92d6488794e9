//! `kind: Prompt` (issue 11 item 4): validation end to end, and plan/apply
//! refusing prompts before any write until they manage them.

use crate::support::cli::Workdir;

const PROMPT: &str = "apiVersion: modelsync/v1\nkind: Prompt\nmetadata:\n  name: summarize\nspec:\n  versions:\n    v1:\n      template: \"Summarize {{text}}\"\n      commitMessage: first\n    v2:\n      templateFile: tpl/v2.txt\n  aliases:\n    production: v2\n";

#[test]
fn prompt_manifests_validate_and_read_template_files() {
    let w = Workdir::new();
    w.write("m/summarize.yaml", PROMPT);
    let run = w.run(&["validate", "m"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("m/summarize.yaml:11:21: cannot read templateFile m/tpl/v2.txt"),
        "{run:?}"
    );
    w.write("m/tpl/v2.txt", "Summarize {{text}} in {{n}} words\n");
    let run = w.run(&["validate", "m"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn plan_and_apply_refuse_prompts_before_any_write() {
    let w = Workdir::new();
    w.write("m/summarize.yaml", PROMPT);
    w.write("m/tpl/v2.txt", "Summarize {{text}} in {{n}} words\n");
    for cmd in ["plan", "apply"] {
        let run = w.run(&[cmd, "m"]);
        assert_eq!(run.code, 1, "{cmd}: {run:?}");
        assert!(
            run.stderr.contains("m/summarize.yaml:4:9: prompt \"summarize\": plan and apply do not manage kind: Prompt yet"),
            "{cmd}: {run:?}"
        );
    }
    assert!(!w.registry_file().exists());
}

/// The registry writes of `registry/mlflow/prompts.rs` and the planner of
/// `plan/prompts.rs`, driven by this test (apply does not drive them yet),
/// against the real MLflow 3.17.2 server: MLflow's own client loads what
/// they wrote by alias, a second pass plans nothing, and a moved alias
/// plans the template diff.
#[tokio::test]
async fn prompts_written_the_mlflow_way_load_back_by_alias() {
    use modelsync::plan::prompts::{PromptAction, plan_prompt};
    use modelsync::registry::mlflow::MlflowRegistry;

    async fn run(reg: &MlflowRegistry, d: &modelsync::manifest::DesiredPrompt) -> usize {
        let live = reg.read_prompt(&d.name).await.expect("read prompt");
        let actions = plan_prompt(d, live.as_ref());
        let mut numbers = live.map(|l| l.versions).unwrap_or_default();
        for a in &actions {
            match a {
                PromptAction::CreatePrompt => reg.create_prompt(&d.name).await.expect("create"),
                PromptAction::RegisterVersion { handle } => {
                    let v = &d.versions[handle];
                    let text = v.template.text().expect("resolved");
                    let n = reg
                        .create_prompt_version(&d.name, text, v.commit_message.as_deref(), &v.tags)
                        .await
                        .expect("register");
                    numbers.insert(n, text.to_string());
                }
                PromptAction::SetAlias { alias, handle, .. } => {
                    let text = d.versions[handle].template.text().expect("resolved");
                    let n = *numbers
                        .iter()
                        .rev()
                        .find(|(_, t)| *t == text)
                        .expect("registered")
                        .0;
                    reg.set_prompt_alias(&d.name, alias, n)
                        .await
                        .expect("alias");
                }
            }
        }
        actions.len()
    }

    let srv = crate::support::mlflow::server();
    let reg = srv.registry();
    let name = crate::support::mlflow::unique("prompt");
    let yaml = PROMPT
        .replace("name: summarize", &format!("name: {name}"))
        .replace(
            "templateFile: tpl/v2.txt",
            "template: \"Summarize {{text}} in {{n}} words\"",
        );
    let load = |y: &str| {
        modelsync::manifest::load(&[modelsync::manifest::SourceFile {
            path: "m/p.yaml".into(),
            contents: y.as_bytes().to_vec(),
        }])
        .expect("valid")
        .prompts[&name]
            .clone()
    };
    let desired = load(&yaml);
    assert_eq!(
        run(&reg, &desired).await,
        4,
        "create, two versions, one alias"
    );
    let code = format!(
        "import mlflow\np = mlflow.genai.load_prompt('prompts:/{name}@production')\nprint(repr(p.template)); print(p.version); print(p.commit_message)\n"
    );
    let out = srv.run_python(&code);
    assert!(
        out.starts_with("'Summarize {{text}} in {{n}} words'\n"),
        "{out}"
    );
    // Re-applied: nothing to do, no new version.
    assert_eq!(run(&reg, &desired).await, 0);
    let live = reg.read_prompt(&name).await.expect("read").expect("exists");
    assert_eq!(live.versions.len(), 2);
    // The prompt is not a model to model searches.
    let models = srv.run_python(&format!(
        "from mlflow import MlflowClient\nprint(len(MlflowClient().search_registered_models(filter_string=\"name = '{name}'\")))\n"
    ));
    assert_eq!(models.trim(), "0");
    // The alias moves back to v1: the plan shows the diff, and it moves.
    let moved = load(&yaml.replace("production: v2", "production: v1"));
    let actions = plan_prompt(&moved, Some(&live));
    let [PromptAction::SetAlias { diff, .. }] = actions.as_slice() else {
        panic!("one alias move: {actions:?}");
    };
    assert!(
        diff.contains("-Summarize {{text}} in {{n}} words") && diff.contains("+Summarize {{text}}"),
        "{diff}"
    );
    assert_eq!(run(&reg, &moved).await, 1);
    let out = srv.run_python(&code);
    assert!(out.starts_with("'Summarize {{text}}'\n1\nfirst\n"), "{out}");
}

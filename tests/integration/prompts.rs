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

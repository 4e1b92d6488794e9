//! `kind: Prompt` (issue 11 item 4) through the binary: validation, then
//! plan, apply, saved plans, export and the daemon against the real MLflow
//! 3.17.2 server, checked with MLflow's own client (`load_prompt` by
//! alias); the capability errors on MLflow 2.x and the embedded registry;
//! prompts and models kept apart.

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{MlflowServer, server, unique};

const PROMPT: &str = "apiVersion: modelsync/v1\nkind: Prompt\nmetadata:\n  name: summarize\nspec:\n  versions:\n    v1:\n      template: \"Summarize {{text}}\"\n      commitMessage: first\n      tags: {team: nlp}\n    v2:\n      templateFile: tpl/v2.txt\n  aliases:\n    production: v2\n";

const V2: &str = "Summarize {{text}}\nin {{n}} words.\n";

fn run(w: &Workdir, url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--registry", url];
    all.extend_from_slice(args);
    w.run(&all)
}

/// A workdir with the prompt manifest (named `name`) and its template file.
fn prompt_dir(name: &str) -> Workdir {
    let w = Workdir::new();
    w.write(
        "m/summarize.yaml",
        &PROMPT.replace("name: summarize", &format!("name: {name}")),
    );
    w.write("m/tpl/v2.txt", V2);
    w
}

/// `repr(template)`, version and commit message of `prompts:/name@alias`,
/// as MLflow's client loads them.
fn load(srv: &MlflowServer, name: &str, alias: &str) -> String {
    srv.run_python(&format!(
        "import mlflow\np = mlflow.genai.load_prompt('prompts:/{name}@{alias}')\nprint(repr(p.template)); print(p.version); print(p.commit_message)\n"
    ))
}

/// How many versions the prompt has, as the server answers a search that
/// asks for prompt versions (MLflow's client before 3.5 cannot search them).
fn version_count(srv: &MlflowServer, name: &str) -> usize {
    let out = srv.run_python(&format!(
        "import os, requests\nr = requests.get(os.environ['MLFLOW_TRACKING_URI'] + '/api/2.0/mlflow/model-versions/search', params={{'filter': \"name = '{name}' AND tags.`mlflow.prompt.is_prompt` = 'true'\"}})\nr.raise_for_status()\nprint(len(r.json().get('model_versions', [])))\n"
    ));
    out.trim().parse().expect("a count")
}

/// On MLflow 3: a prompt applied loads back by alias with that version's
/// own client, and a re-apply writes no version; on 2.x: refused, nothing
/// written (the version matrix runs this on each version).
pub fn prompt_scenario(srv: &MlflowServer, version: &str, name: &str) {
    let w = prompt_dir(name);
    let r = run(&w, &srv.url, &["apply", "m"]);
    if version.starts_with("2.") {
        assert_eq!(r.code, 1, "MLflow {version}: {r:?}");
        assert!(
            r.stderr
                .contains(&format!("MLflow {version} has no prompt registry")),
            "MLflow {version}: {r:?}"
        );
        return;
    }
    assert_eq!(r.code, 0, "MLflow {version}: {r:?}");
    let loaded = load(srv, name, "production");
    assert!(
        loaded.starts_with("'Summarize {{text}}\\nin {{n}} words.\\n'\n2\n"),
        "MLflow {version}: {loaded}"
    );
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "MLflow {version}: {r:?}");
    assert!(r.stdout.contains("No changes"), "MLflow {version}: {r:?}");
    assert_eq!(version_count(srv, name), 2, "MLflow {version}");
}

#[test]
fn prompt_manifests_validate_and_read_template_files() {
    let w = Workdir::new();
    w.write("m/summarize.yaml", PROMPT);
    let run = w.run(&["validate", "m"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("m/summarize.yaml:12:21: cannot read templateFile m/tpl/v2.txt"),
        "{run:?}"
    );
    w.write("m/tpl/v2.txt", V2);
    let run = w.run(&["validate", "m"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn the_embedded_registry_refuses_prompts_before_any_write() {
    let w = prompt_dir("summarize");
    for cmd in ["plan", "apply"] {
        let r = w.run(&[cmd, "m"]);
        assert_eq!(r.code, 1, "{cmd}: {r:?}");
        assert!(
            r.stderr.contains(
                "m/summarize.yaml:4:9: prompt \"summarize\": the embedded registry has no prompt registry"
            ),
            "{cmd}: {r:?}"
        );
    }
    let data = std::fs::read_to_string(w.registry_file()).unwrap_or_default();
    assert!(!data.contains("summarize"), "nothing written: {data}");
}

#[test]
fn mlflow_2_refuses_prompts_before_any_write() {
    let srv = crate::support::servers::mlflow2();
    let name = unique("prompt2");
    let w = prompt_dir(&name);
    for cmd in ["plan", "apply"] {
        let r = run(&w, &srv.url, &[cmd, "m"]);
        assert_eq!(r.code, 1, "{cmd}: {r:?}");
        assert!(
            r.stderr
                .contains(&format!("prompt \"{name}\": MLflow 2.22.5 has no prompt registry; prompts need MLflow 3.0 or later")),
            "{cmd}: {r:?}"
        );
    }
    let found = srv.run_python(&format!(
        "from mlflow import MlflowClient\nprint(len(MlflowClient().search_registered_models(filter_string=\"name = '{name}'\")))\n"
    ));
    assert_eq!(found.trim(), "0", "nothing registered");
}

/// The PR flow with a prompt: plan, apply, MLflow's client loads the
/// template by alias; a re-apply writes nothing; an alias move is planned
/// with the template diff, saved, applied from the saved plan; a saved plan
/// goes stale when the alias is moved by hand.
#[test]
fn prompts_apply_load_back_by_alias_and_move_through_saved_plans() {
    let srv = server();
    let name = unique("prompt");
    let w = prompt_dir(&name);
    let r = run(&w, &srv.url, &["plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "changes pending: {r:?}");
    assert!(r.stdout.contains(&format!("prompt {name}")), "{r:?}");
    assert!(r.stdout.contains("+ create prompt"), "{r:?}");
    assert!(
        r.stdout
            .contains("+ register version (v2): template of 2 lines"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("alias production: none -> new version (v2)"),
        "{r:?}"
    );
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        load(srv, &name, "production"),
        format!("{V2:?}\n2\n\n").replace('"', "'"),
        "MLflow's client loads the declared template"
    );
    let first = srv.run_python(&format!(
        "import mlflow\np = mlflow.genai.load_prompt('prompts:/{name}/1')\nprint(p.commit_message); print(p.tags.get('team'))\n"
    ));
    assert_eq!(first, "first\nnlp\n");

    // Re-applied: nothing to do, no new version.
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("No changes"), "{r:?}");
    assert_eq!(version_count(srv, &name), 2);

    // The alias moves back to v1: the plan shows the diff; saved, applied.
    w.write(
        "m/summarize.yaml",
        &PROMPT
            .replace("name: summarize", &format!("name: {name}"))
            .replace("production: v2", "production: v1"),
    );
    let r = run(
        &w,
        &srv.url,
        &["plan", "m", "--out", "plan.json", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout
            .contains("~ alias production: version 2 -> version 1"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("-Summarize {{text}}\n")
            || r.stdout.contains("      -Summarize {{text}}"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("      -in {{n}} words."),
        "the diff: {r:?}"
    );
    let md = run(&w, &srv.url, &["plan", "m", "--format", "markdown"]);
    assert!(md.stdout.contains("```diff\n"), "{md:?}");
    let r = run(&w, &srv.url, &["apply", "--plan", "plan.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        load(srv, &name, "production"),
        "'Summarize {{text}}'\n1\nfirst\n"
    );
    assert_eq!(version_count(srv, &name), 2, "no version registered twice");

    // A saved plan made, then the alias moved by hand: stale (exit 4).
    w.write(
        "m/summarize.yaml",
        &PROMPT.replace("name: summarize", &format!("name: {name}")),
    );
    let r = run(
        &w,
        &srv.url,
        &["plan", "m", "--out", "plan.json", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    srv.run_python(&format!(
        "from mlflow import MlflowClient\nMlflowClient().set_prompt_alias('{name}', 'production', 2)\n"
    ));
    let r = run(&w, &srv.url, &["apply", "--plan", "plan.json"]);
    assert_eq!(r.code, 4, "stale: {r:?}");
    assert!(
        r.stderr.contains(&format!(
            "prompt {name}: alias production was version 1, now version 2"
        )),
        "{r:?}"
    );
}

/// Export writes the prompts as `kind: Prompt` manifests, which plan to no
/// changes; models and prompts never touch each other.
#[test]
fn export_round_trips_and_prompts_and_models_stay_apart() {
    let srv = server();
    let name = unique("prompt-x");
    let w = prompt_dir(&name);
    assert_eq!(run(&w, &srv.url, &["apply", "m"]).code, 0);
    let r = run(&w, &srv.url, &["export"]);
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r
        .stdout
        .split("---\n")
        .find(|d| d.contains(&format!("name: {name}\n")))
        .unwrap_or_else(|| panic!("the prompt is exported: {}", r.stdout));
    assert!(doc.contains("kind: Prompt"), "{doc}");
    let x = Workdir::new();
    x.write("e/prompt.yaml", doc);
    let r = run(&x, &srv.url, &["plan", "e"]);
    assert_eq!(r.code, 0, "the export plans to no changes: {r:?}");

    // A model manifest naming the prompt, a prompt manifest naming a model.
    let m = Workdir::new();
    m.write(
        "m/model.yaml",
        &format!("apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    v1: {{source: s3://b/x}}\n  aliases: {{champion: v1}}\n"),
    );
    let r = run(&m, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "error: \"{name}\" is a prompt in the registry, not a registered model"
        )),
        "{r:?}"
    );
    assert_eq!(version_count(srv, &name), 2, "the prompt is untouched");
    let model = unique("model-p");
    let mm = Workdir::new();
    mm.write(
        "m/model.yaml",
        &format!("apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {model}\nspec:\n  versions:\n    v1: {{source: s3://b/x}}\n  aliases: {{champion: v1}}\n"),
    );
    assert_eq!(run(&mm, &srv.url, &["apply", "m"]).code, 0);
    let p = prompt_dir(&model);
    let r = run(&p, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("is a registered model, not a prompt"),
        "{r:?}"
    );
    assert_eq!(
        version_count_model(srv, &model),
        1,
        "the model is untouched"
    );
}

fn version_count_model(srv: &MlflowServer, name: &str) -> usize {
    let out = srv.run_python(&format!(
        "from mlflow import MlflowClient\nprint(len(MlflowClient().search_model_versions(\"name = '{name}'\")))\n"
    ));
    out.trim().parse().expect("a count")
}

/// The daemon's one-shot pass applies prompts from a folder, templates
/// read beside the manifests.
#[test]
fn watch_once_applies_prompts() {
    let srv = server();
    let name = unique("prompt-w");
    let w = prompt_dir(&name);
    let r = run(&w, &srv.url, &["watch", "m", "--once"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        load(srv, &name, "production")
            .starts_with("'Summarize {{text}}\\nin {{n}} words.\\n'\n2\n")
    );
}

/// A prompt alias moved by hand is healed within seconds after MLflow's own
/// webhook (`prompt_alias.created`) reaches the daemon, resync off.
#[test]
fn a_hand_moved_prompt_alias_is_healed_after_mlflows_own_webhook() {
    use std::time::{Duration, Instant};

    use crate::support::mlflow::free_port;

    let srv = server();
    let name = unique("prompt-hook");
    let hook = unique("modelsync-prompt-hook");
    let w = prompt_dir(&name);
    let port = free_port().expect("port");
    let mut d = crate::support::webhooks::daemon(&w, &srv.url, port, &hook);
    d.wait_log("reconcile success", Duration::from_secs(120));
    let alias = || {
        srv.run_python(&format!(
            "from mlflow import MlflowClient\nprint(MlflowClient().get_prompt_version_by_alias('{name}', 'production').version)\n"
        ))
        .trim()
        .to_string()
    };
    assert_eq!(alias(), "2");
    // Each server worker caches the webhook list for a second
    // (MLFLOW_WEBHOOK_CACHE_TTL): a move within it of the registration is
    // delivered to no one, so a move not healed within 10 s is made again.
    let start = Instant::now();
    'healed: loop {
        srv.run_python(&format!(
            "from mlflow import MlflowClient\nMlflowClient().set_prompt_alias('{name}', 'production', 1)\n"
        ));
        let moved = Instant::now();
        while moved.elapsed() < Duration::from_secs(10) {
            if alias() == "2" {
                break 'healed;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not healed (resync is off):\n{}",
            d.logs().join("\n")
        );
    }
    d.wait_log("MLflow webhook received", Duration::from_secs(120));
    // The operator sees the prompt: in /status and on the page.
    let s = d.wait_status("the prompt back in sync", Duration::from_secs(120), |s| {
        s["models"].as_array().is_some_and(|ms| {
            ms.iter()
                .any(|m| m["name"] == name.as_str() && m["state"] == "in_sync")
        })
    });
    let view = s["models"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name.as_str()))
        .cloned()
        .expect("the prompt's view");
    assert_eq!(view["kind"], "prompt", "{view:#}");
    assert_eq!(view["aliases"][0]["target"], "production", "{view:#}");
    assert_eq!(view["aliases"][0]["version"], 2, "{view:#}");
    assert_eq!(
        view["aliases"][0]["source"], "Summarize {{text}}",
        "{view:#}"
    );
    let page = d.get("/");
    assert!(
        page.body.contains(&format!("prompt </span>{name}")),
        "{}",
        page.body
    );
    d.terminate(Duration::from_secs(120));
    crate::support::webhooks::delete_webhooks_named(srv, &hook);
}

/// A gated model and a prompt in one folder, the way a team runs them: the
/// PR's saved plan is written and applied on merge (the prompt applied, the
/// gated move blocked: exit 5), the approval lands in the registry, and the
/// daemon's pass promotes the model without touching the prompt.
#[test]
fn a_gated_model_and_a_prompt_through_plan_out_apply_plan_and_the_daemon() {
    let srv = server();
    let name = unique("prompt-flow");
    let model = unique("gated-flow");
    let w = prompt_dir(&name);
    w.write(
        "m/model.yaml",
        &format!(
            "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {model}\nspec:\n  versions:\n    a: {{source: \"s3://bucket/{model}/a\"}}\n  aliases:\n    champion: a\n  gates:\n    champion:\n      - requireTag: {{key: approved, value: \"true\"}}\n"
        ),
    );
    let r = run(&w, &srv.url, &["plan", "m", "--out", "plan.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        w.path().join("plan.json").exists(),
        "the saved plan is written"
    );
    let r = run(&w, &srv.url, &["apply", "--plan", "plan.json"]);
    assert_eq!(r.code, 5, "the gated move is blocked: {r:?}");
    assert!(
        load(srv, &name, "production")
            .starts_with("'Summarize {{text}}\\nin {{n}} words.\\n'\n2\n")
    );
    let champion = |srv: &MlflowServer| {
        srv.run_python(&format!(
            "from mlflow import MlflowClient\nm = MlflowClient().get_registered_model('{model}')\nprint(m.aliases.get('champion'))\n"
        ))
        .trim()
        .to_string()
    };
    assert_eq!(champion(srv), "None");
    srv.run_python(&format!(
        "from mlflow import MlflowClient\nMlflowClient().set_model_version_tag('{model}', '1', 'approved', 'true')\n"
    ));
    let r = run(&w, &srv.url, &["watch", "m", "--once"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(champion(srv), "1");
    assert_eq!(version_count(srv, &name), 2, "the prompt is left as it was");
}

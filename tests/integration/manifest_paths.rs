//! Issue 17 point 1 — a manifest can only read what is in the manifests —
//! through the built binary. A `templateFile` that leads out of the
//! manifests root (`..`, an absolute path, `/proc/self/environ`, a symbolic
//! link pointing out) is refused by `validate`, `plan` and `apply` with
//! file:line:column and exit 1, before any request to the registry (counted
//! by the recording proxy in front of MLflow 3.17.2; the embedded
//! registry's file is never created), and the planted content of what lies
//! outside never shows: not on stdout or stderr, not in a Markdown plan,
//! not in a saved plan. A saved plan cannot bring one in either. Git mode
//! (`watch --git`) is in `manifest_paths/git.rs`.

mod git;

use std::os::unix::fs::symlink;

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{server, unique};
use crate::support::proxy::Proxy;

/// Content of the files outside the manifests, and of the environment a
/// manifest must not read.
const PLANTED: &str = "planted-secret-7e3b9a1c";

/// Where `templateFile`'s value is in [`prompt`]'s manifest.
const AT: &str = "m/p.yaml:8:21";

/// A prompt whose one version is the template file `path` (line 8,
/// column 21).
pub fn prompt(name: &str, path: &str) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: Prompt\nmetadata:\n  name: {name}\nspec:\n  versions:\n    v1:\n      templateFile: {path}\n  aliases:\n    production: v1\n"
    )
}

/// Stdout and stderr together.
fn all(r: &Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

/// A workdir with a secret beside the manifests folder `m/`, links in `m/`
/// pointing at it and at `/proc/self/environ`, and a good template inside.
fn workdir() -> Workdir {
    let w = Workdir::new();
    w.write("outside.txt", &format!("{PLANTED}\n"));
    w.write("m/tpl/ok.txt", "Hello {{name}}\n");
    let m = w.path().join("m");
    symlink("../outside.txt", m.join("link.txt")).expect("symlink");
    symlink("/proc/self/environ", m.join("env.txt")).expect("symlink");
    symlink("tpl/ok.txt", m.join("inside.txt")).expect("symlink");
    w
}

/// Every way out of the root, and what the refusal says.
fn escapes(w: &Workdir) -> Vec<(String, String)> {
    let outside = w.path().join("outside.txt").display().to_string();
    let out_of_m = "leads outside the manifests root m";
    let absolute = "an absolute path; a manifest may only read files inside its manifests root m";
    vec![
        ("../outside.txt".into(), format!("templateFile ../outside.txt: {out_of_m}")),
        ("tpl/../../outside.txt".into(), out_of_m.into()),
        (outside.clone(), format!("templateFile {outside}: {absolute}")),
        ("/etc/passwd".into(), absolute.into()),
        ("/proc/self/environ".into(), absolute.into()),
        (
            "link.txt".into(),
            "cannot read templateFile m/link.txt: goes through the symbolic link m/link.txt -> ../outside.txt, which leads outside the manifests root m".into(),
        ),
        (
            "env.txt".into(),
            "cannot read templateFile m/env.txt: goes through the symbolic link m/env.txt -> /proc/self/environ, an absolute target".into(),
        ),
    ]
}

/// Runs `args` in `w` against `registry` with a planted secret in the
/// environment (as CI holds its tokens).
fn run(w: &Workdir, registry: &str, args: &[&str]) -> Run {
    let mut all = vec!["--registry", registry];
    all.extend_from_slice(args);
    Run::from_command(
        w.command(&all)
            .env("MLFLOW_TRACKING_TOKEN", PLANTED)
            .env("AWS_SECRET_ACCESS_KEY", PLANTED),
    )
}

/// `validate`, `plan` and `apply` refuse each escape with file:line:column,
/// exit 1, never show what is outside, and send no request to MLflow (the
/// proxy sees none) nor create the embedded registry's file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_file_out_of_the_folder_is_refused_before_anything_is_read_or_written() {
    let proxy = Proxy::start(&server().url).await;
    let w = workdir();
    let name = unique("paths-folder");
    let embedded = w.registry_uri();
    for (path, why) in escapes(&w) {
        w.write("m/p.yaml", &prompt(&name, &path));
        for registry in [proxy.url.as_str(), embedded.as_str()] {
            for cmd in ["validate", "plan", "apply"] {
                let r = run(&w, registry, &[cmd, "m"]);
                assert_eq!(r.code, 1, "{cmd} {path} on {registry}: {r:?}");
                let shown = all(&r);
                assert!(
                    shown.contains(&format!("{AT}: ")) && shown.contains(&why),
                    "{cmd} {path} on {registry}: wants {AT}: …{why}…\n{r:?}"
                );
                assert!(!shown.contains(PLANTED), "{cmd} {path}: {r:?}");
            }
        }
    }
    assert_eq!(proxy.seen().len(), 0, "{:#?}", proxy.seen());
    assert!(
        !w.registry_file().exists(),
        "the embedded registry was opened"
    );

    // Inside the folder, directly or through a link that stays inside: read.
    for path in ["tpl/ok.txt", "inside.txt", "./tpl/../tpl/ok.txt"] {
        w.write("m/p.yaml", &prompt(&name, path));
        let r = run(&w, &proxy.url, &["plan", "m", "--detailed-exitcode"]);
        assert_eq!(r.code, 2, "{path}: {r:?}");
        assert!(
            r.stdout.contains("template of 1 line, 15 characters"),
            "{path}: {r:?}"
        );
    }
}

/// The pull request flow with `templateFile: /proc/self/environ` (as
/// written, and through a link): the Markdown comment and the saved plan
/// never carry the job's environment; exit 1, no plan file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_plan_never_carries_the_environment() {
    let proxy = Proxy::start(&server().url).await;
    let w = workdir();
    let name = unique("paths-pr");
    for path in [
        "/proc/self/environ",
        "env.txt",
        "../../../../proc/self/environ",
    ] {
        w.write("m/p.yaml", &prompt(&name, path));
        let r = run(&w, &proxy.url, &["plan", "m", "--format", "markdown"]);
        assert_eq!(r.code, 1, "{path}: {r:?}");
        assert!(all(&r).contains(AT), "{path}: {r:?}");
        assert!(!all(&r).contains(PLANTED), "{path}: {r:?}");
        let r = run(&w, &proxy.url, &["plan", "m", "--out", "plan.json"]);
        assert_eq!(r.code, 1, "{path}: {r:?}");
        assert!(all(&r).contains(AT), "{path}: {r:?}");
        assert!(!all(&r).contains(PLANTED), "{path}: {r:?}");
        assert!(
            !w.path().join("plan.json").exists(),
            "{path}: a plan was saved"
        );
    }
    assert_eq!(proxy.seen().len(), 0, "{:#?}", proxy.seen());
}

/// A saved plan edited to name a file out of the root (with its text in
/// the plan's `templates`): `apply --plan` refuses it with file:line:column
/// and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_cannot_name_a_file_out_of_the_root() {
    let proxy = Proxy::start(&server().url).await;
    let writes = || proxy.seen().iter().filter(|s| s.method != "GET").count();
    let w = workdir();
    let name = unique("paths-saved");
    w.write("m/p.yaml", &prompt(&name, "tpl/ok.txt"));
    let r = run(&w, &proxy.url, &["plan", "m", "--out", "plan.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let path = w.path().join("plan.json");
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("plan")).expect("json");
    assert_eq!(saved["roots"], serde_json::json!(["m"]), "{saved:#}");
    let text = saved["manifests"][0]["text"]
        .as_str()
        .expect("text")
        .to_string();
    for (named, key) in [
        ("../outside.txt", "m/../outside.txt"),
        ("../outside.txt", "outside.txt"),
        ("/etc/passwd", "/etc/passwd"),
    ] {
        saved["manifests"][0]["text"] = text.replace("tpl/ok.txt", named).into();
        saved["templates"][key] = PLANTED.into();
        std::fs::write(&path, saved.to_string()).expect("write");
        let before = writes();
        let r = run(&w, &proxy.url, &["apply", "--plan", "plan.json"]);
        assert_eq!(r.code, 1, "{named}: {r:?}");
        assert!(
            r.stderr.contains(&format!("{AT}: templateFile {named}: ")),
            "{named}: {r:?}"
        );
        assert_eq!(writes(), before, "{named}: {:#?}", proxy.seen());
    }
    assert_eq!(writes(), 0, "{:#?}", proxy.seen());
}

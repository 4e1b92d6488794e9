//! Issue 17 point 2: secrets never leave the process, whatever the
//! manifests say. A value of `MLFLOW_TRACKING_TOKEN` or
//! `MODELSYNC_GIT_TOKEN` planted in a manifest (a description, a tag, an
//! inline prompt template) is refused by every kind of plan with an error
//! naming the variable, exit 1, and not one request to MLflow; a secret the
//! registry holds is refused before the plan shows it (found also in its
//! JSON-escaped form); the daemon's `/status` and page never show one; an
//! `etcd://` URI with a password is refused without printing it.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use modelsync::registry::Registry;

use crate::support::cli::{Run, Workdir};
use crate::support::daemon::Daemon;
use crate::support::mlflow::{server, unique};
use crate::support::proxy::Proxy;

const WAIT: Duration = Duration::from_secs(60);

/// A fresh secret value (tests run in parallel; each plants its own).
fn secret(prefix: &str) -> String {
    format!("{prefix}-{:016x}", fastrand::u64(..))
}

fn model(name: &str, description: &str, team: &str) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  \
         description: '{description}'\n  tags: {{team: '{team}'}}\n  versions:\n    \
         a: {{source: \"s3://bucket/{name}/a\"}}\n  aliases:\n    champion: a\n"
    )
}

fn prompt(name: &str, template: &str) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: Prompt\nmetadata:\n  name: {name}\nspec:\n  versions:\n    \
         v1:\n      template: \"Summarize {{{{text}}}} {template}\"\n  aliases:\n    production: v1\n"
    )
}

/// `modelsync --registry URL ARGS` in `w` with `env` set.
fn run(w: &Workdir, url: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut all = vec!["--registry", url];
    all.extend_from_slice(args);
    let mut cmd = w.command(&all);
    cmd.envs(env.iter().copied());
    Run::from_command(&mut cmd)
}

/// Every plan of `m` (Markdown, JSON, text, a saved plan) and `apply` are
/// refused: exit 1, the variable named, the value nowhere, no plan file.
fn assert_every_plan_refused(w: &Workdir, url: &str, env: &[(&str, &str)], variable: &str) {
    let value = env
        .iter()
        .find(|(k, _)| *k == variable)
        .map(|(_, v)| *v)
        .expect("the planted variable is set");
    let saved = w.path().join("plan.json");
    let saved_arg = saved.to_str().expect("utf-8");
    for args in [
        &["plan", "m", "--format", "markdown"][..],
        &["plan", "m", "--format", "json"],
        &["plan", "m"],
        &["plan", "m", "--out", saved_arg],
        &["apply", "m"],
    ] {
        let r = run(w, url, env, args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(variable), "{args:?}: {r:?}");
        assert!(
            !r.stdout.contains(value) && !r.stderr.contains(value),
            "{args:?} showed the secret: {r:?}"
        );
        assert!(!saved.exists(), "{args:?} saved a plan");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_secret_is_refused_by_every_plan_and_nothing_reaches_mlflow() {
    let srv = server();
    let proxy = Proxy::start(&srv.url).await;
    let token = secret("tok");
    let git_token = secret("ghs");
    let env = [
        ("MLFLOW_TRACKING_TOKEN", token.as_str()),
        ("MODELSYNC_GIT_TOKEN", git_token.as_str()),
    ];
    let (described, tagged, prompted) = (unique("leak-d"), unique("leak-t"), unique("leak-p"));

    // The tracking token as a model's description.
    let w = Workdir::new();
    w.write("m/a.yaml", &model(&described, &token, "ml"));
    assert_every_plan_refused(&w, &proxy.url, &env, "MLFLOW_TRACKING_TOKEN");
    let r = run(&w, &proxy.url, &env, &["validate", "m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("m/a.yaml:6:17"), "where it is: {r:?}");

    // The git token as a tag value.
    let w = Workdir::new();
    w.write("m/a.yaml", &model(&tagged, "fine", &git_token));
    assert_every_plan_refused(&w, &proxy.url, &env, "MODELSYNC_GIT_TOKEN");

    // The tracking token inside an inline prompt template.
    let w = Workdir::new();
    w.write("m/p.yaml", &prompt(&prompted, &token));
    assert_every_plan_refused(&w, &proxy.url, &env, "MLFLOW_TRACKING_TOKEN");

    assert!(
        proxy.seen().is_empty(),
        "not one request: {:?}",
        proxy.seen()
    );
    let reg = srv.registry();
    for name in [&described, &tagged, &prompted] {
        assert!(
            reg.get_model(name).await.expect("read").is_none(),
            "{name} was created"
        );
    }
    // The same manifests without the secret plan fine (the refusal is the
    // secret's, not the manifests').
    let w = Workdir::new();
    w.write("m/a.yaml", &model(&described, "fine", "ml"));
    let r = run(&w, &proxy.url, &env, &["plan", "m", "--format", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// A secret the registry already holds (set by hand, with a quote and a
/// backslash, so the JSON plan would hold it escaped) is refused before
/// the plan that would show it as the value replaced: nothing printed,
/// saved or written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_the_registry_holds_is_refused_before_any_plan_shows_it() {
    let srv = server();
    let name = unique("leak-held");
    let w = Workdir::new();
    w.write("m/a.yaml", &model(&name, "reviewed", "ml"));
    let r = run(&w, &srv.url, &[], &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let token = format!("{}\"q\\b", secret("tok"));
    let reg = srv.registry();
    reg.update_model_description(&name, &token)
        .await
        .expect("set by hand");
    w.write("m/a.yaml", &model(&name, "reviewed again", "ml"));

    let proxy = Proxy::start(&srv.url).await;
    let env = [("MLFLOW_TRACKING_TOKEN", token.as_str())];
    let escaped = serde_json::to_string(&token).expect("json");
    let escaped = escaped.trim_matches('"');
    let saved = w.path().join("plan.json");
    for args in [
        &["plan", "m", "--format", "json"][..],
        &["plan", "m", "--format", "markdown"],
        &["plan", "m", "--out", saved.to_str().expect("utf-8")],
        &["apply", "m"],
    ] {
        let r = run(&w, &proxy.url, &env, args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("refused")
                && r.stderr
                    .contains("the value of the secret MLFLOW_TRACKING_TOKEN"),
            "{args:?}: {r:?}"
        );
        let shown = format!("{}{}", r.stdout, r.stderr);
        assert!(
            !shown.contains(&token) && !shown.contains(escaped),
            "{args:?}: {r:?}"
        );
        assert!(!saved.exists(), "{args:?} saved a plan");
    }
    let writes = proxy
        .seen()
        .iter()
        .filter(|s| s.method != "GET" && !s.path.contains("search"))
        .count();
    assert_eq!(writes, 0, "{:?}", proxy.seen());
    let m = reg.get_model(&name).await.expect("read").expect("model");
    assert_eq!(m.description, token, "left as it was");

    // Manifests that leave the description alone: the plan shows nothing
    // of it, but a saved plan records what the registry held, so it is
    // not saved.
    w.write(
        "m/a.yaml",
        &model(&name, "x", "ml").replace("  description: 'x'\n", ""),
    );
    let r = run(&w, &proxy.url, &env, &["plan", "m", "--format", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains(escaped), "{r:?}");
    let r = run(
        &w,
        &proxy.url,
        &env,
        &["plan", "m", "--out", saved.to_str().expect("utf-8")],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("refused to save the plan") && r.stderr.contains("MLFLOW_TRACKING_TOKEN"),
        "{r:?}"
    );
    assert!(!saved.exists(), "no plan saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_never_shows_a_planted_secret() {
    let srv = server();
    let name = unique("leak-daemon");
    let token = secret("tok");
    let w = Workdir::new();
    w.write("m/a.yaml", &model(&name, &token, "ml"));
    let mut cmd = w.command(&["--registry", &srv.url, "watch", "m", "--resync", "0"]);
    cmd.env("MLFLOW_TRACKING_TOKEN", &token);
    let mut d = Daemon::start(cmd);
    let s = d.wait_status("the manifests refused", WAIT, |s| {
        s["last_error"]["kind"] == "invalid"
    });
    let diagnostics = s["last_error"]["diagnostics"].to_string();
    assert!(
        diagnostics.contains("m/a.yaml:6:17") && diagnostics.contains("MLFLOW_TRACKING_TOKEN"),
        "{s:#}"
    );
    for path in ["/status", "/", &format!("/models/{name}"), "/metrics"] {
        let r = d.get(path);
        assert!(!r.body.contains(&token), "{path} shows the secret: {r:?}");
    }
    assert!(
        d.get("/").body.contains("MLFLOW_TRACKING_TOKEN"),
        "the page says why"
    );
    assert!(
        srv.registry()
            .get_model(&name)
            .await
            .expect("read")
            .is_none(),
        "nothing written"
    );
    // Fixed: applied, and still nothing shows the secret.
    w.write("m/a.yaml", &model(&name, "fixed", "ml"));
    d.wait_status("applied once fixed", WAIT, |s| s["last_error"].is_null());
    for path in ["/status", "/", &format!("/models/{name}")] {
        let r = d.get(path);
        assert!(!r.body.contains(&token), "{path}: {r:?}");
    }
    let logs = d.logs().join("\n");
    assert!(!logs.contains(&token), "{logs}");
    assert_eq!(d.terminate(WAIT), 0);
}

/// The last line: an answer of the daemon that would show a secret (here
/// the watched folder's own name) is withheld, naming the variable.
#[test]
fn an_answer_that_would_show_a_secret_is_withheld() {
    let token = secret("tok");
    let w = Workdir::new();
    let folder = format!("m-{token}");
    w.write(
        &format!("{folder}/a.yaml"),
        &model("withheld", "fine", "ml"),
    );
    let mut cmd = w.command(&["watch", &folder, "--resync", "0"]);
    cmd.env("MLFLOW_TRACKING_TOKEN", &token);
    let d = Daemon::start(cmd);
    for path in ["/status", "/"] {
        let r = d.get(path);
        assert_eq!(r.status, 500, "{path}: {r:?}");
        assert!(
            r.body.contains("withheld") && r.body.contains("MLFLOW_TRACKING_TOKEN"),
            "{path}: {r:?}"
        );
        assert!(!r.body.contains(&token), "{path}: {r:?}");
    }
    assert_eq!(d.get("/healthz").status, 200);
    let logs = d.logs().join("\n");
    assert!(!logs.contains(&token), "logs are masked: {logs}");
    assert!(logs.contains("***"), "{logs}");
}

/// etcd authentication is not supported: a URI with credentials is refused
/// at start, and the password is printed nowhere (it used to be, in every
/// retry line).
#[test]
fn an_etcd_uri_with_a_password_is_refused_and_never_printed() {
    let w = Workdir::new();
    w.write("m/a.yaml", &model("etcd-pw", "fine", "ml"));
    let password = secret("etcd-pw");
    let port = crate::support::mlflow::free_port().expect("port");
    let uri = format!("etcd://root:{password}@127.0.0.1:{port}");
    let mut cmd = w.command(&[
        "watch",
        "m",
        "--leader-election",
        &uri,
        "--listen",
        "127.0.0.1:0",
    ]);
    let (code, output) = exit_within(&mut cmd, WAIT);
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("credentials in the URI are not supported"),
        "{output}"
    );
    assert!(!output.contains(&password), "{output}");
    assert!(!w.registry_file().exists());
}

/// Runs `cmd`, killing it after `timeout`; its exit code (`None`: killed)
/// and its stdout and stderr.
fn exit_within(cmd: &mut Command, timeout: Duration) -> (Option<i32>, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start modelsync");
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::new();
    for pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read>),
    ]
    .into_iter()
    .flatten()
    {
        let mut pipe = pipe;
        let _ = pipe.read_to_string(&mut output);
    }
    (code, output)
}

/// A secret under 8 characters is not looked for (it would refuse innocent
/// text), and a warning says so, naming the variable only.
#[test]
fn a_short_secret_is_not_looked_for_and_the_log_says_so() {
    let w = Workdir::new();
    w.write("m/a.yaml", &model("short-secret", "abc1234", "ml"));
    let mut cmd = w.command(&["plan", "m"]);
    cmd.env("MLFLOW_TRACKING_TOKEN", "abc1234");
    let (code, output) = exit_within(&mut cmd, WAIT);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("MLFLOW_TRACKING_TOKEN is shorter than 8 characters"),
        "{output}"
    );
    assert!(output.contains("description \"abc1234\""), "{output}");
}

//! Git mode: a `templateFile` resolves to a blob of the commit under
//! `--path`, never to the daemon's file system. `watch --git … --once` on a
//! local repository, against MLflow 3.17.2 behind the recording proxy.

use std::os::unix::fs::symlink;

use super::{AT, PLANTED, prompt};
use crate::support::cli::{Run, Workdir};
use crate::support::git::GitRepo;
use crate::support::mlflow::{server, unique};
use crate::support::proxy::Proxy;

/// A template absent from the commit but on the daemon's disk (relative to
/// its working folder, and absolute), a `..` out of `--path` to a file in
/// the commit, links in the commit leading out: each refused with
/// file:line:column, exit 1, no write, the host's file never shown. A
/// template inside `--path` (directly or through a link inside) applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_git_reads_templates_only_from_the_commit_under_its_path() {
    let srv = server();
    let proxy = Proxy::start(&srv.url).await;
    let writes = || proxy.seen().iter().filter(|s| s.method != "GET").count();
    let w = Workdir::new();
    let repo = GitRepo::new(&w.path().join("git"));
    let cache = w.path().join("cache").display().to_string();
    let name = unique("paths-git");
    // On the daemon's disk, where the old fallback looked: never read.
    let host = w.write("m/tpl/host.txt", &format!("{PLANTED}\n"));
    repo.push("other/t.txt", &format!("{PLANTED} in the commit\n"));
    repo.push("m/tpl/ok.txt", "Hello {{name}}\n");
    symlink("../other/t.txt", repo.work.join("m/link.txt")).expect("symlink");
    symlink("/etc/passwd", repo.work.join("m/abs.txt")).expect("symlink");
    symlink("tpl/ok.txt", repo.work.join("m/inside.txt")).expect("symlink");
    let watch = |path: &str| -> Run {
        repo.push("m/p.yaml", &prompt(&name, path));
        let r = w.run(&[
            "--registry",
            &proxy.url,
            "watch",
            "--git",
            &repo.url,
            "--branch",
            "main",
            "--path",
            "m",
            "--once",
            "--cache-dir",
            &cache,
        ]);
        assert!(
            !r.stdout.contains(PLANTED) && !r.stderr.contains(PLANTED),
            "{path}: {r:?}"
        );
        r
    };
    let host = host.display().to_string();
    let cases = [
        (
            "tpl/host.txt".to_string(),
            "cannot read templateFile m/tpl/host.txt: not in commit ".to_string(),
        ),
        (
            host.clone(),
            format!("templateFile {host}: an absolute path"),
        ),
        (
            "../other/t.txt".into(),
            "templateFile ../other/t.txt: leads outside the manifests root m".into(),
        ),
        (
            "link.txt".into(),
            "goes through the symbolic link m/link.txt -> ../other/t.txt, which leads outside the manifests root m".into(),
        ),
        (
            "abs.txt".into(),
            "goes through the symbolic link m/abs.txt -> /etc/passwd, an absolute target".into(),
        ),
    ];
    for (path, why) in &cases {
        let r = watch(path);
        assert_eq!(r.code, 1, "{path}: {r:?}");
        assert!(
            r.stderr.contains(&format!("{AT}: ")) && r.stderr.contains(why.as_str()),
            "{path}: wants {AT}: …{why}…\n{r:?}"
        );
        assert_eq!(writes(), 0, "{path}: {:#?}", proxy.seen());
    }

    // Inside --path, in the commit: applied, as MLflow's client loads it.
    let r = watch("tpl/ok.txt");
    assert_eq!(r.code, 0, "{r:?}");
    let loaded = srv.run_python(&format!(
        "import mlflow\nprint(repr(mlflow.genai.load_prompt('prompts:/{name}@production').template))\n"
    ));
    assert_eq!(loaded, "'Hello {{name}}\\n'\n");
    let r = watch("inside.txt");
    assert_eq!(r.code, 0, "a link inside --path is followed: {r:?}");
}

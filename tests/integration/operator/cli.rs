//! `apply`'s progress line on a pseudo-terminal (util-linux `script`), and
//! never when stderr is piped or with `-q`; completions that the shells
//! parse; the man pages.

use std::process::Command;

use crate::support::cli::{Workdir, bin};

fn models(w: &Workdir, n: usize) {
    for i in 0..n {
        w.write(
            &format!("m/m{i}.yaml"),
            &format!(
                "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: progress-{i}\n\
                 spec:\n  versions:\n    v1: {{source: s3://b/progress-{i}/1}}\n  aliases:\n    champion: v1\n"
            ),
        );
    }
}

/// Runs `modelsync ARGS` under `script`, so stdin, stdout and stderr are a
/// terminal; returns everything the terminal received.
fn on_pty(w: &Workdir, args: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_modelsync");
    let out = Command::new("script")
        .args(["-qec", &format!("{bin} {args}"), "/dev/null"])
        .current_dir(w.path())
        .env("MODELSYNC_REGISTRY", w.registry_uri())
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .output()
        .expect("util-linux script (apt-get install bsdutils)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn apply_shows_progress_on_a_terminal_only() {
    let w = Workdir::new();
    models(&w, 5);
    let tty = on_pty(&w, "apply m");
    assert!(tty.contains("Apply complete: 15 applied"), "{tty}");
    for done in 0..=5 {
        assert!(
            tty.contains(&format!("applying: {done}/5 models, 0 failed")),
            "no {done}/5 progress on the terminal:\n{tty}"
        );
    }
    assert!(!tty.contains("applying: 0/0"), "no bar while planning");
    assert!(tty.contains("[00:00:"), "elapsed time shown: {tty}");

    // Piped stderr: no progress at all, and no terminal escapes.
    let w = Workdir::new();
    models(&w, 5);
    let piped = w.run(&["apply", "m"]);
    assert_eq!(piped.code, 0, "{piped:?}");
    assert!(!piped.stderr.contains("applying:"), "{piped:?}");
    assert!(!piped.stderr.contains('\u{1b}'), "{piped:?}");

    // -q on a terminal: none either.
    let w = Workdir::new();
    models(&w, 2);
    let quiet = on_pty(&w, "apply m -q");
    assert!(quiet.contains("Apply complete: 6 applied"), "{quiet}");
    assert!(!quiet.contains("applying:"), "{quiet}");
}

#[test]
fn completions_parse_in_their_shells() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bin().args(["completions", shell]).output().expect("run");
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).expect("utf-8");
        for word in ["validate", "apply", "watch", "registry", "completions"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("modelsync.bash");
            std::fs::write(&file, &script).expect("write");
            let check = Command::new("bash")
                .arg("-n")
                .arg(&file)
                .output()
                .expect("bash");
            assert!(check.status.success(), "bash -n: {check:?}");
        }
    }
    let bad = bin().args(["completions", "tcsh"]).output().expect("run");
    assert_eq!(
        bad.status.code(),
        Some(1),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_pages_come_from_the_clap_definitions() {
    let out = bin().arg("man").output().expect("run");
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8(out.stdout).expect("utf-8");
    assert!(page.starts_with(".ie"), "roff: {page}");
    assert!(page.contains(".TH modelsync 1"), "{page}");
    assert!(page.contains("Declarative promotion controller"), "{page}");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let watch = std::fs::read_to_string(dir.path().join("modelsync-watch.1")).expect("watch page");
    assert!(watch.contains("\\-\\-git"), "the watch page lists --git");
    assert!(dir.path().join("modelsync-lease-show.1").exists());
}

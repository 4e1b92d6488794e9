//! The command line's edges: usage errors, `--log-format json` for the
//! diagnostics and the final error, a failing `watch --once -q`, and one
//! wording of each action in the plan and in apply's results.

use crate::support::cli::{Run, Workdir, bin};

/// A manifest with one problem, at `m/bad.yaml:1:13`.
const BAD: &str = "apiVersion: modelsync/v2\nkind: RegisteredModel\nmetadata:\n  name: b\n";

#[test]
fn usage_errors_exit_1_not_2() {
    let w = Workdir::new();
    for args in [
        &["plan", "--bogus-flag"][..],
        &["plna"],
        &["plan", "--format", "xml"],
        &["plan", "--detailed-exitcode", "--format", "yaml"],
        &[],
    ] {
        let run = w.run(args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        // clap's message (the help, for no subcommand at all) on stderr.
        assert!(run.stderr.contains("--help"), "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
    }
}

#[test]
fn help_and_version_still_exit_0_on_stdout() {
    for args in [
        &["--help"][..],
        &["plan", "--help"],
        &["-h"],
        &["--version"],
    ] {
        let out = bin().args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}

/// Every stderr line as JSON; panics on a line that is not.
fn json_lines(run: &Run) -> Vec<serde_json::Value> {
    run.stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{run:?}")))
        .collect()
}

#[test]
fn json_log_format_reports_diagnostics_and_the_final_error_as_json() {
    let w = Workdir::new();
    w.write("m/bad.yaml", BAD);
    for cmd in ["plan", "apply"] {
        let run = w.run(&["--log-format", "json", cmd, "m"]);
        assert_eq!(run.code, 1, "{run:?}");
        let lines = json_lines(&run);
        assert_eq!(lines.len(), 2, "{run:?}");
        let d = &lines[0];
        assert_eq!(d["level"], "ERROR", "{run:?}");
        assert_eq!(d["file"], "m/bad.yaml", "{run:?}");
        assert_eq!(d["line"], 1, "{run:?}");
        assert_eq!(d["column"], 13, "{run:?}");
        assert!(
            d["message"].as_str().unwrap().contains("apiVersion"),
            "{run:?}"
        );
        assert!(
            lines[1]["message"].as_str().unwrap().contains("1 problem"),
            "{run:?}"
        );
    }
    // An error that reaches `main` (here: a missing path).
    let run = w.run(&["plan", "nope", "--log-format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let lines = json_lines(&run);
    assert_eq!(lines.len(), 1, "{run:?}");
    assert_eq!(lines[0]["level"], "ERROR", "{run:?}");
    assert!(
        lines[0]["message"].as_str().unwrap().contains("nope"),
        "{run:?}"
    );
    // `validate`: the diagnostics stay data on stdout; the final error is JSON.
    let run = w.run(&["validate", "m", "--log-format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.starts_with("m/bad.yaml:1:13: "), "{run:?}");
    assert_eq!(json_lines(&run).len(), 1, "{run:?}");
}

#[test]
fn text_log_format_reports_diagnostics_as_file_line_column() {
    let w = Workdir::new();
    w.write("m/bad.yaml", BAD);
    let run = w.run(&["plan", "m"]);
    assert_eq!(run.code, 1, "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(
        lines[0].starts_with("m/bad.yaml:1:13: unsupported apiVersion"),
        "{run:?}"
    );
    assert!(lines[1].starts_with("error: 1 problem found"), "{run:?}");
    let run = w.run(&["plan", "nope"]);
    assert_eq!(
        run.stderr, "error: nope: no such file or directory\n",
        "{run:?}"
    );
}

#[test]
fn failing_watch_once_says_why_on_stderr_even_with_quiet() {
    let w = Workdir::new();
    w.write("m/bad.yaml", BAD);
    for extra in [&["-q"][..], &[], &["-q", "--log-format", "json"]] {
        let mut args = vec!["watch", "m", "--once"];
        args.extend_from_slice(extra);
        let run = w.run(&args);
        assert_eq!(run.code, 1, "{extra:?}: {run:?}");
        assert!(
            run.stderr
                .contains("watch --once: 1 problem(s) in the manifests"),
            "{extra:?}: {run:?}"
        );
    }
    // An unreachable registry: exit 3, and why.
    w.write("ok/churn.yaml", &BAD.replace("v2", "v1"));
    let run = w.run(&[
        "--registry",
        "http://127.0.0.1:9",
        "watch",
        "ok",
        "--once",
        "-q",
    ]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("watch --once: "), "{run:?}");
}

#[test]
fn apply_results_word_each_action_as_the_plan_does() {
    let w = Workdir::new();
    let v1 = "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: churn\nspec:\n  \
        description: churn model\n  tags: {team: ml}\n  versions:\n    first:\n      source: s3://b/1\n  \
        stages:\n    Production: first\n  aliases:\n    champion: first\n";
    w.write("m/churn.yaml", v1);
    assert_eq!(w.run(&["apply", "m"]).code, 0);
    let v2 = v1
        .replace("team: ml", "team: ml2")
        .replace(
            "    first:\n      source: s3://b/1\n",
            "    first:\n      source: s3://b/1\n    second:\n      source: s3://b/2\n",
        )
        .replace("Production: first", "Production: second")
        .replace("champion: first", "champion: second");
    w.write("m/churn.yaml", &v2);
    let plan = w.run(&["plan", "m"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let described: Vec<&str> = plan
        .stdout
        .lines()
        .filter_map(|l| {
            ["  + ", "  ~ ", "  - "]
                .iter()
                .find_map(|p| l.strip_prefix(p))
        })
        .collect();
    assert!(described.len() >= 5, "{plan:?}");
    let apply = w.run(&["apply", "m"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    for d in described {
        let line = format!("churn: {d} ... ok");
        assert!(
            apply.stdout.lines().any(|l| l == line),
            "no {line:?} in {apply:?}"
        );
    }
}

//! Passes that must stop before any write: an unparsable `MODELSYNC_NOW`,
//! and a plan with an error in one model while another is valid.

use super::{Bench, line_of};
use crate::support::backend::{Backend, manifest};

const NOW_VAR: &str = "MODELSYNC_NOW";

/// `plan`, `apply` and `watch --once` refuse an unparsable `MODELSYNC_NOW`
/// with exit 1, name the variable, and write nothing (on MLflow they send
/// no request at all).
async fn unparsable_now_is_an_error(b: Backend) {
    let t = Bench::new(b, "pass-now").await;
    t.manifest(&format!(
        "  versions:\n    v: {{source: \"s3://bucket/{}/v\"}}\n  stages:\n    Production: v\n",
        t.name()
    ));
    let before = t.mark();
    for args in [
        &["plan", "m"][..],
        &["apply", "m"],
        &["apply", "m", "--prune"],
        &["watch", "m", "--once"],
    ] {
        let r = t.run_env(&[(NOW_VAR, "next tuesday")], args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(NOW_VAR) && r.stderr.contains("next tuesday"),
            "{args:?}: the message names the variable and its value: {r:?}"
        );
    }
    assert_eq!(t.writes_since(&before), 0);
    if let Some(p) = &t.proxy {
        assert!(p.seen().is_empty(), "requests made: {:#?}", p.seen());
    }
    assert!(t.model().await.is_none(), "the model was created");
    // An empty MODELSYNC_NOW is the wall clock, not an error.
    let r = t.run_env(&[(NOW_VAR, "")], &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// Two models: `a` names `version: 9`, which does not exist; `b` is valid
/// and has changes. `apply` and `watch --once` exit 1, name the file:line
/// of `version: 9`, and write nothing at all (not `b` either).
async fn a_plan_with_errors_writes_nothing(b: Backend) {
    let t = Bench::new(b, "pass-errors").await;
    let (a, other) = (t.name().to_string(), format!("{}-b", t.name()));
    let versions = format!("  versions:\n    one: {{source: \"s3://bucket/{a}/1\"}}\n");
    t.c.w.write("m/a.yaml", &manifest(&a, &versions));
    let r = t.run(&["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let bad = manifest(
        &a,
        &format!("{versions}    old:\n      version: 9\n  stages:\n    Staging: old\n"),
    );
    t.c.w.write("m/a.yaml", &bad);
    t.c.w.write(
        "m/b.yaml",
        &manifest(
            &other,
            &format!(
                "  versions:\n    v: {{source: \"s3://bucket/{other}/v\"}}\n  stages:\n    Production: v\n"
            ),
        ),
    );
    let at = format!("m/a.yaml:{}:", line_of(&bad, "version: 9"));
    let before = t.mark();
    for args in [&["apply", "m"][..], &["watch", "m", "--once"]] {
        let r = t.run(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        let said = format!("{}{}", r.stdout, r.stderr);
        assert!(
            said.contains(&at) && said.contains("version 9"),
            "{args:?}: names {at}: {r:?}"
        );
        assert!(
            r.stderr.contains("nothing was"),
            "{args:?}: says nothing was written: {r:?}"
        );
    }
    assert_eq!(t.writes_since(&before), 0, "writes with a plan error");
    assert!(
        t.c.model_opt(&other).await.is_none(),
        "the valid model was written"
    );
}

crate::both!(
    unparsable_now_is_an_error,
    a_plan_with_errors_writes_nothing
);

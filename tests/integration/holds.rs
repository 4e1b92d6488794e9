//! Rollback, holds, freezes, promotion windows and break-glass (issue 19),
//! on both registries, through `apply`, `apply --plan` and the daemon's
//! pass (`watch --once`): a rollback by hand puts the previous holder
//! back and holds it; nothing undoes the hold until the manifests declare
//! the held version or a person releases it; a freeze stops every move but
//! a rollback; windows block with their name and until when; `--break-glass
//! --reason` passes and is stamped.

use modelsync::state::LiveModel;
use modelsync::state::hold::{Cause, Hold};

use crate::support::backend::{Backend, Ctx, manifest};
use crate::support::cli::Run;
use crate::support::receiver::Receiver;

/// Versions one and two; `targets` the stages/aliases block.
fn write(c: &Ctx, targets: &str) {
    let n = &c.name;
    let body = format!(
        "  versions:\n    one: {{source: \"s3://holds/{n}/1\"}}\n    two: {{source: \"s3://holds/{n}/2\"}}\n{targets}"
    );
    c.w.write("m/model.yaml", &manifest(n, &body));
}

fn ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what}: {r:?}");
}

fn hold_on(m: &LiveModel, target: &str) -> Option<Hold> {
    modelsync::state::hold::holds(m).remove(target)
}

fn production(m: &LiveModel) -> Vec<u64> {
    m.holders(modelsync::state::Stage::Production)
        .map(|v| v.version)
        .collect()
}

/// champion and Production on version 1, then on version 2 (the audit
/// trail: 2 replaced 1).
fn promoted_twice(c: &Ctx) {
    write(
        c,
        "  stages:\n    Production: one\n  aliases:\n    champion: one\n",
    );
    ok(&c.run(&["apply", "m"]), "first apply");
    write(
        c,
        "  stages:\n    Production: two\n  aliases:\n    champion: two\n",
    );
    ok(&c.run(&["apply", "m"]), "second apply");
}

async fn rollback_holds_until_git_catches_up_or_a_release(b: Backend) {
    let c = Ctx::new(b, "rollback");
    promoted_twice(&c);
    let name = c.name.clone();
    let rollback = |extra: &[&str]| {
        let mut args = vec!["rollback", name.as_str(), "--alias", "champion"];
        args.extend_from_slice(extra);
        c.run(&args)
    };
    // Off a terminal, no --yes: refused, nothing written.
    let r = rollback(&["--reason", "p99 doubled"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("pass --yes"), "{r:?}");
    // A version that does not exist: refused.
    let r = rollback(&["--to", "9", "--reason", "x", "--yes"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("version 9"), "{r:?}");
    let m = c.model().await;
    assert_eq!(m.aliases.get("champion"), Some(&2), "nothing written");
    assert!(hold_on(&m, "champion").is_none());

    // The default: the previous holder, from the audit trail.
    let r =
        c.w.command(&[
            "--registry",
            &c.uri(),
            "rollback",
            &name,
            "--alias",
            "champion",
            "--reason",
            "p99 doubled",
            "--yes",
        ])
        .env("MODELSYNC_ACTOR", "alice")
        .output()
        .expect("run");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    ok(
        &c.run(&[
            "rollback",
            &name,
            "--stage",
            "Production",
            "--reason",
            "bad release",
            "--yes",
        ]),
        "rollback Production",
    );
    let m = c.model().await;
    assert_eq!(m.aliases.get("champion"), Some(&1));
    assert_eq!(production(&m), vec![1], "the replaced holder is archived");
    let h = hold_on(&m, "champion").expect("held");
    assert_eq!(
        (h.version, h.by.as_str(), h.cause),
        (1, "alice", Cause::Rollback)
    );
    assert_eq!(h.reason, "p99 doubled");
    let stamp = &m.versions[&1].tags["modelsync.promoted-at.champion"];
    assert!(
        stamp.contains("previous=2") && stamp.contains("rollback"),
        "{stamp}"
    );

    // Held: plan says so and counts no change; apply, a saved plan and the
    // daemon's pass leave it.
    let r = c.run(&["plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("held") && r.stdout.contains("alice"),
        "{r:?}"
    );
    ok(&c.run(&["apply", "m"]), "apply while held");
    ok(&c.run(&["plan", "m", "--out", "p.json"]), "plan --out");
    ok(&c.run(&["apply", "--plan", "p.json"]), "apply --plan");
    let hook = Receiver::start(0);
    ok(
        &c.run(&["watch", "m", "--once", "--notify", &hook.url]),
        "watch --once",
    );
    let event = hook.received().last().expect("a notification").json();
    assert_eq!(event["type"], "io.modelsync.reconcile.held", "{event:#}");
    assert_eq!(event["data"]["models"][0]["state"], "held", "{event:#}");
    let m = c.model().await;
    assert_eq!(m.aliases.get("champion"), Some(&1), "never undone");
    assert_eq!(production(&m), vec![1], "never undone");

    // hold list: both holds, in one read.
    let r = c.run(&["hold", "list", "--format", "json"]);
    ok(&r, "hold list");
    let list: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let mine: Vec<_> = list["holds"]
        .as_array()
        .expect("holds")
        .iter()
        .filter(|h| h["model"] == name.as_str())
        .map(|h| {
            (
                h["target"].as_str().unwrap_or("").to_string(),
                h["version"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        mine,
        [("Production".into(), Some(1)), ("champion".into(), Some(1))]
    );
    let r = c.run(&["history", &name]);
    assert!(
        r.stdout.contains("held: alias champion at version 1"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("rollback by alice: \"p99 doubled\""),
        "{r:?}"
    );

    // A release lets the daemon heal the alias.
    let r = c.run(&["hold", "release", &name, "--alias", "champion"]);
    assert_eq!(r.code, 1, "needs --yes off a terminal: {r:?}");
    ok(
        &c.run(&["hold", "release", &name, "--alias", "champion", "--yes"]),
        "hold release",
    );
    ok(&c.run(&["watch", "m", "--once"]), "watch --once heals");
    let m = c.model().await;
    assert_eq!(m.aliases.get("champion"), Some(&2), "healed");
    assert!(hold_on(&m, "champion").is_none());
    assert_eq!(production(&m), vec![1], "still held");

    // Git catches up: the manifests declare the held version; the pass
    // releases the hold (its own plan line).
    write(
        &c,
        "  stages:\n    Production: one\n  aliases:\n    champion: two\n",
    );
    let r = c.run(&["apply", "m"]);
    ok(&r, "apply releases");
    assert!(
        r.stdout.contains("release hold on stage Production"),
        "{r:?}"
    );
    let m = c.model().await;
    assert!(hold_on(&m, "Production").is_none(), "released");
    assert_eq!(production(&m), vec![1]);
}

async fn a_freeze_stops_every_move_but_a_rollback(b: Backend) {
    let c = Ctx::new(b, "freeze");
    promoted_twice(&c);
    let name = c.name.clone();
    // A reason that holds a secret's value is refused: it would be a tag.
    let secret = "s3cr3t-token-value-4711";
    for args in [
        &["freeze", "--reason", secret][..],
        &[
            "rollback", &name, "--alias", "champion", "--reason", secret, "--yes",
        ][..],
        &["apply", "m", "--break-glass", "--reason", secret][..],
    ] {
        let uri = c.uri();
        let out =
            c.w.command(&[&["--registry", uri.as_str()][..], args].concat())
                .env("MLFLOW_TRACKING_TOKEN", secret)
                .output()
                .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("MLFLOW_TRACKING_TOKEN") && !stderr.contains(secret),
            "{stderr}"
        );
    }
    ok(&c.run(&["freeze", "--reason", "incident 4711"]), "freeze");
    let r = c.run(&["hold", "list"]);
    assert!(
        r.stdout.contains("frozen by") && r.stdout.contains("incident 4711"),
        "{r:?}"
    );
    write(
        &c,
        "  stages:\n    Production: two\n  aliases:\n    champion: two\n    canary: two\n",
    );
    let hook = Receiver::start(0);
    let watch = ["watch", "m", "--once", "--notify", hook.url.as_str()];
    for entry in [&["apply", "m"][..], &watch[..]] {
        let r = c.run(entry);
        assert_eq!(r.code, 5, "{entry:?} during a freeze: {r:?}");
        assert!(r.stdout.contains("incident 4711"), "{r:?}");
    }
    assert_eq!(c.model().await.aliases.get("canary"), None, "blocked");
    // The daemon's pass says so: a `frozen` event, the model row frozen.
    let got = hook.received();
    let event = got.last().expect("a notification").json();
    assert_eq!(event["type"], "io.modelsync.reconcile.frozen", "{event:#}");
    let row = &event["data"]["models"][0];
    assert_eq!(row["state"], "frozen", "{event:#}");
    assert!(
        row["freeze"]
            .as_str()
            .unwrap_or("")
            .contains("incident 4711"),
        "{event:#}"
    );
    // The incident tool still works.
    ok(
        &c.run(&[
            "rollback",
            &name,
            "--alias",
            "champion",
            "--reason",
            "during the freeze",
            "--yes",
        ]),
        "rollback during a freeze",
    );
    assert_eq!(c.model().await.aliases.get("champion"), Some(&1));
    // One apply through, stamped.
    let r = c.run(&["apply", "m", "--break-glass", "--reason", "hotfix 12"]);
    ok(&r, "break glass");
    let m = c.model().await;
    assert_eq!(m.aliases.get("canary"), Some(&2));
    assert_eq!(m.aliases.get("champion"), Some(&1), "still held");
    let stamp = &m.versions[&2].tags["modelsync.promoted-at.canary"];
    assert!(
        stamp.contains("break-glass") && stamp.contains("hotfix 12"),
        "{stamp}"
    );
    ok(&c.run(&["unfreeze"]), "unfreeze");
    write(
        &c,
        "  stages:\n    Production: two\n  aliases:\n    champion: one\n    canary: two\n    next: two\n",
    );
    ok(&c.run(&["apply", "m"]), "apply after unfreeze");
    assert_eq!(c.model().await.aliases.get("next"), Some(&2));
}

const WINDOWS: &str = "[[windows]]\nname = \"weekend\"\nkind = \"deny\"\n\
    schedule = \"0 17 * * FRI\"\nduration = \"64h\"\ntimezone = \"Europe/Berlin\"\n\
    targets = [\"champion\"]\n\n\
    [[windows]]\nname = \"office hours\"\nkind = \"allow\"\n\
    schedule = \"0 9 * * MON-FRI\"\nduration = \"8h\"\ntargets = [\"Production\"]\n";

async fn windows_block_with_their_name_until_when_and_glass_passes(b: Backend) {
    let c = Ctx::new(b, "windows");
    c.w.write("m/modelsync.toml", WINDOWS);
    write(&c, "  aliases:\n    canary: one\n");
    ok(&c.run(&["apply", "m"]), "an alias no window names");
    write(
        &c,
        "  stages:\n    Production: one\n  aliases:\n    canary: one\n    champion: one\n",
    );
    // Saturday noon: inside the deny window, outside office hours.
    let saturday = Some("2026-01-17T12:00:00Z");
    let r = c.run_at(saturday, &["apply", "m"]);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stdout.contains("window weekend (deny)"), "{r:?}");
    assert!(r.stdout.contains("until 2026-01-19T08:00:00Z"), "{r:?}");
    assert!(r.stdout.contains("window office hours (allow)"), "{r:?}");
    assert!(
        r.stdout.contains("closed until 2026-01-19T09:00:00Z"),
        "{r:?}"
    );
    let m = c.model().await;
    assert_eq!(m.aliases.get("champion"), None);
    assert!(production(&m).is_empty());
    // Tuesday 10:00: both open for moves.
    let r = c.run_at(
        Some("2026-01-20T10:00:00Z"),
        &["plan", "m", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 2, "changes, none blocked: {r:?}");
    // A saved plan, reviewed blocked, applied through the glass.
    ok(
        &c.run_at(saturday, &["plan", "m", "--out", "p.json"]),
        "plan --out",
    );
    let glass = [
        "apply",
        "--plan",
        "p.json",
        "--break-glass",
        "--reason",
        "sev1 fix",
    ];
    ok(&c.run_at(saturday, &glass), "break glass");
    let m = c.model().await;
    assert_eq!(m.aliases.get("champion"), Some(&1));
    assert_eq!(production(&m), vec![1]);
    let stamp = &m.versions[&1].tags["modelsync.promoted-at.champion"];
    assert!(
        stamp.contains("break-glass") && stamp.contains("sev1 fix"),
        "{stamp}"
    );
    let r = c.run(&["history", &c.name]);
    assert!(r.stdout.contains("break-glass by"), "{r:?}");
}

/// `modelsync ARGS` as `who` (`MODELSYNC_ACTOR`) at `now`.
fn run_as(c: &Ctx, who: &str, now: &str, args: &[&str]) -> Run {
    let uri = c.uri();
    let mut cmd =
        c.w.command(&[&["--registry", uri.as_str()][..], args].concat());
    cmd.env("MODELSYNC_ACTOR", who).env("MODELSYNC_NOW", now);
    Run::from_command(&mut cmd)
}

async fn a_rollback_in_a_deny_window_or_over_someone_elses_hold_needs_the_glass(b: Backend) {
    let c = Ctx::new(b, "glass");
    promoted_twice(&c);
    c.w.write("m/modelsync.toml", WINDOWS);
    let name = c.name.clone();
    let saturday = "2026-01-17T12:00:00Z";
    let rollback = ["rollback", &name, "--alias", "champion", "--manifests", "m"];
    let args = |extra: &[&'static str]| [&rollback[..], extra].concat();
    // Inside the weekend's deny window: blocked, exit 5, which and until when.
    let r = run_as(&c, "alice", saturday, &args(&["--reason", "sev1", "--yes"]));
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stderr.contains("window weekend (deny)")
            && r.stderr.contains("until 2026-01-19T08:00:00Z")
            && r.stderr.contains("--break-glass"),
        "{r:?}"
    );
    let m = c.model().await;
    assert_eq!(m.aliases.get("champion"), Some(&2), "nothing written");
    assert!(hold_on(&m, "champion").is_none(), "nothing written");
    // Through the glass: rolled back, said, and stamped.
    let glass = args(&["--reason", "sev1", "--yes", "--break-glass"]);
    let r = run_as(&c, "alice", saturday, &glass);
    ok(&r, "rollback through the glass");
    assert!(r.stderr.contains("overridden"), "{r:?}");
    let m = c.model().await;
    assert_eq!(m.aliases.get("champion"), Some(&1));
    let stamp = &m.versions[&1].tags["modelsync.promoted-at.champion"];
    assert!(
        stamp.contains("rollback") && stamp.contains("break-glass") && stamp.contains("sev1"),
        "{stamp}"
    );
    // Alice's hold: bob may not replace it (on a Tuesday, no window open)
    // without the glass.
    let tuesday = "2026-01-20T10:00:00Z";
    let bobs = args(&["--to", "2", "--reason", "fixed", "--yes"]);
    let r = run_as(&c, "bob", tuesday, &bobs);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stderr.contains("held by someone else") && r.stderr.contains("alice"),
        "{r:?}"
    );
    let m = c.model().await;
    assert_eq!(m.aliases.get("champion"), Some(&1));
    assert_eq!(hold_on(&m, "champion").map(|h| h.by), Some("alice".into()));
    let r = run_as(
        &c,
        "bob",
        tuesday,
        &[&bobs[..], &["--break-glass"]].concat(),
    );
    ok(&r, "bob through the glass");
    let m = c.model().await;
    assert_eq!(m.aliases.get("champion"), Some(&2));
    assert_eq!(hold_on(&m, "champion").map(|h| h.by), Some("bob".into()));
}

crate::both!(
    rollback_holds_until_git_catches_up_or_a_release,
    a_freeze_stops_every_move_but_a_rollback,
    windows_block_with_their_name_until_when_and_glass_passes,
    a_rollback_in_a_deny_window_or_over_someone_elses_hold_needs_the_glass,
);

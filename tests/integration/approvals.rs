//! Signed approvals against the harness's real MLflow 3 server: keys made
//! with `ssh-keygen` here, approvals made with `modelsync approve` (tags
//! and `approvals/` files) and with plain `ssh-keygen -Y sign`, and the
//! `approvals` gate counting only what verifies for this registry, model,
//! target and version — every other approval leaving the move blocked
//! (exit 5) with the reason. `approvals/servers.rs`: another workspace, and
//! a protected model's reader approving through a commit the daemon reads.

mod servers;

use std::path::{Path, PathBuf};
use std::process::Command;

use modelsync::registry::Registry;
use modelsync::state::Stage;

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{server, unique};

/// An ed25519 key pair made by ssh-keygen; the private key's path.
pub fn keygen(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client)");
    assert!(out.status.success(), "{out:?}");
    key
}

/// `principal keytype key` for the approvers file.
pub fn signer(principal: &str, key: &Path) -> String {
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let mut parts = public.split_whitespace();
    let (kind, b64) = (parts.next().expect("type"), parts.next().expect("key"));
    format!("{principal} {kind} {b64}\n")
}

/// Two versions (a, b) of `name`; Production holds a. With `gated`,
/// Production is declared as b behind `gate`, and the alias champion as b
/// behind one approval from anyone.
pub fn manifest(name: &str, gated: Option<&str>) -> String {
    let mut m = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    a: {{source: \"s3://bucket/{name}/a\"}}\n    b: {{source: \"s3://bucket/{name}/b\"}}\n  stages:\n"
    );
    match gated {
        None => m.push_str("    Production: a\n"),
        Some(gate) => m.push_str(&format!(
            "    Production: b\n  aliases:\n    champion: b\n  gates:\n    Production:\n      - approvals: {gate}\n    champion:\n      - approvals: {{from: any}}\n"
        )),
    }
    m
}

/// A team: alice, bob and carol in the approvers file, mallory not; a model
/// with versions 1 and 2 registered (Production: 1), then gated.
pub struct Team {
    pub w: Workdir,
    pub url: String,
    pub name: String,
    pub env: Vec<(String, String)>,
}

impl Team {
    /// On the server at `url`, with `env` for every run; `gate` guards
    /// Production (`{required: 2, from: [alice, bob, carol]}`).
    pub fn new(prefix: &str, url: &str, env: &[(&str, &str)], gate: &str) -> Team {
        let t = Team {
            w: Workdir::new(),
            url: url.to_string(),
            name: unique(prefix),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        for who in ["alice", "bob", "carol", "mallory"] {
            keygen(&t.keys(), who);
        }
        t.approvers(&["alice", "bob", "carol"]);
        t.w.write("m/modelsync.toml", "approvers = \"approvers\"\n");
        t.w.write("m/model.yaml", &manifest(&t.name, None));
        let r = t.run(&["apply", "m"]);
        assert_eq!(r.code, 0, "registering versions 1 and 2: {r:?}");
        t.w.write("m/model.yaml", &manifest(&t.name, Some(gate)));
        t
    }

    pub fn keys(&self) -> PathBuf {
        self.w.path().join("keys")
    }

    pub fn key(&self, who: &str) -> String {
        self.keys().join(who).display().to_string()
    }

    /// Writes the approvers file with these principals' keys.
    pub fn approvers(&self, who: &[&str]) {
        let text: String = who
            .iter()
            .map(|p| signer(p, &self.keys().join(p)))
            .collect();
        self.w.write("m/approvers", &text);
    }

    /// Runs the binary against the team's registry.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(&[], args)
    }

    pub fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut all = vec!["--registry", &self.url];
        all.extend_from_slice(args);
        let mut cmd = self.w.command(&all);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.envs(env.iter().copied());
        Run::from_command(&mut cmd)
    }

    /// `modelsync approve|reject NAME <args> --key keys/<key>`, exit 0;
    /// signed as the key's name unless `args` name a principal or `--out`
    /// (whose `modelsync.toml` finds it).
    pub fn sign(&self, verb: &str, key: &str, args: &[&str]) -> Run {
        let path = self.key(key);
        let mut all = vec![verb, &self.name, "--key", &path];
        all.extend_from_slice(args);
        if !args.contains(&"--principal") && !args.contains(&"--out") {
            all.extend(["--principal", key]);
        }
        let r = self.run(&all);
        assert_eq!(r.code, 0, "{verb} {args:?}: {r:?}");
        r
    }

    /// `apply m` is blocked (exit 5) and says `why`.
    pub fn blocked(&self, why: &str) -> Run {
        let r = self.run(&["apply", "m"]);
        assert_eq!(r.code, 5, "{r:?}");
        assert!(r.stdout.contains(why), "expected {why:?} in {r:?}");
        r
    }
}

const PROD2: &[&str] = &["--stage", "Production", "--version", "2"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_listed_approvals_pass_and_the_move_names_them() {
    let srv = server();
    let t = Team::new(
        "appr-two",
        &srv.url,
        &[],
        "{required: 2, from: [alice, bob, carol]}",
    );
    t.blocked("0 approvals, 2 required");
    t.sign("approve", "alice", PROD2);
    // bob's principal is found in the approvers file by his key.
    let r = t.sign(
        "approve",
        "bob",
        &[PROD2, &["--out", "m", "--comment", "LGTM"]].concat(),
    );
    assert!(r.stdout.contains("as bob"), "{r:?}");
    let r = t.run(&["apply", "m"]);
    assert_eq!(r.code, 5, "champion is still unapproved: {r:?}");
    assert!(
        r.stdout.contains("2 approvals, 2 required: alice, bob"),
        "{r:?}"
    );
    let reg = srv.registry();
    let model = reg.get_model(&t.name).await.expect("read").expect("model");
    assert_eq!(model.versions[&2].stage, Stage::Production, "{model:#?}");
    assert_eq!(model.versions[&1].stage, Stage::Archived);
    let stamp = &model.versions[&2].tags["modelsync.promoted-at.Production"];
    assert!(stamp.contains(" approved-by=alice,bob"), "{stamp}");
    let r = t.run(&["history", &t.name]);
    assert!(r.stdout.contains("approved by alice, bob"), "{r:?}");

    // Anyone can check the tag with ssh-keygen alone.
    let record = &model.versions[&2].tags["modelsync.approval.Production.alice"];
    let (statement, sig) = record
        .split_once("-----BEGIN SSH SIGNATURE-----")
        .expect("a record");
    t.w.write("check/statement", statement);
    t.w.write(
        "check/statement.sig",
        &format!("-----BEGIN SSH SIGNATURE-----{sig}"),
    );
    let check = |principal: &str| {
        Command::new("ssh-keygen")
            .args(["-Y", "verify", "-f", "m/approvers", "-I", principal])
            .args(["-n", "modelsync-approval", "-s", "check/statement.sig"])
            .current_dir(t.w.path())
            .stdin(std::fs::File::open(t.w.path().join("check/statement")).expect("open"))
            .output()
            .expect("ssh-keygen -Y verify")
    };
    let ok = check("alice");
    assert!(ok.status.success(), "{ok:?}");
    assert!(
        !check("bob").status.success(),
        "alice's signature is not bob's"
    );
}

/// Each approval that does not count, beside alice's that does, leaves a
/// gate of two blocked, and the plan says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_that_do_not_count_leave_the_move_blocked_with_the_reason() {
    let srv = server();
    let reg = srv.registry();
    let t = Team::new(
        "appr-not",
        &srv.url,
        &[],
        "{required: 2, from: [alice, bob, carol]}",
    );
    t.sign("approve", "alice", PROD2);
    t.blocked("1 approval, 2 required: alice");

    // bob approved version 1 (N-1), and Staging: files beside the manifests.
    let v1 = ["--stage", "Production", "--version", "1", "--out", "m"];
    t.sign("approve", "bob", &v1);
    t.blocked(&format!(
        "file m/approvals/{}/Production/v1.bob.approval: signed for version 1",
        t.name
    ));
    let staging = ["--stage", "Staging", "--version", "2", "--out", "m"];
    t.sign("approve", "bob", &staging);
    t.blocked(&format!(
        "file m/approvals/{}/Staging/v2.bob.approval: signed for Staging",
        t.name
    ));
    // A file committed by someone without an allowed key, claiming bob.
    t.sign(
        "approve",
        "mallory",
        &[PROD2, &["--out", "m", "--principal", "bob"]].concat(),
    );
    let r = t.blocked(&format!(
        "file m/approvals/{}/Production/v2.bob.approval: signed by key SHA256:",
        t.name
    ));
    assert!(
        r.stdout.contains("which the approvers file does not list"),
        "{r:?}"
    );
    std::fs::remove_dir_all(t.w.path().join("m/approvals")).expect("rm");

    // Expired: signed as of 2020 for a day.
    let bob_tag = "tag modelsync.approval.Production.bob";
    let old = t.run_env(
        &[("MODELSYNC_NOW", "2020-01-01T00:00:00Z")],
        &[
            &[
                "approve",
                &t.name,
                "--key",
                &t.key("bob"),
                "--principal",
                "bob",
            ][..],
            &["--expires", "1d", "--stage", "Production", "--version", "2"],
        ]
        .concat(),
    );
    assert_eq!(old.code, 0, "{old:?}");
    t.blocked(&format!("{bob_tag}: expired at 2020-01-02T00:00:00Z"));

    // An unlisted key, claiming to be bob.
    t.sign(
        "approve",
        "mallory",
        &[PROD2, &["--principal", "bob"]].concat(),
    );
    t.blocked(&format!("{bob_tag}: signed by key SHA256:"));
    t.blocked("which the approvers file does not list");

    // A tag edited by hand: bob's approval for Staging, made to say Production.
    t.sign("approve", "bob", &["--stage", "Staging", "--version", "2"]);
    let model = reg.get_model(&t.name).await.expect("read").expect("model");
    let staging = &model.versions[&2].tags["modelsync.approval.Staging.bob"];
    let edited = staging.replace("target: Staging", "target: Production");
    reg.set_version_tag(&t.name, 2, "modelsync.approval.Production.bob", &edited)
        .await
        .expect("hand-made tag");
    reg.delete_version_tag(&t.name, 2, "modelsync.approval.Staging.bob")
        .await
        .expect("delete");
    t.blocked(&format!(
        "{bob_tag}: the signature does not verify: the statement was altered"
    ));

    // carol signs, then her key is removed from the approvers file.
    t.sign("approve", "carol", PROD2);
    t.approvers(&["alice", "bob"]);
    t.blocked("tag modelsync.approval.Production.carol: signed by key SHA256:");
    let r = t.blocked("1 approval, 2 required: alice");
    assert!(r.stdout.contains("(never, or no longer)"), "{r:?}");

    let model = reg.get_model(&t.name).await.expect("read").expect("model");
    assert_eq!(model.versions[&1].stage, Stage::Production, "nothing moved");
    assert_eq!(model.versions[&2].stage, Stage::None);
}

/// A signed rejection blocks the alias whatever approvals there are; a
/// later approval by the same principal withdraws it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_rejection_blocks_until_a_later_approval() {
    let srv = server();
    let t = Team::new("appr-reject", &srv.url, &[], "{required: 1, from: [alice]}");
    let champion = ["--alias", "champion", "--version", "2"];
    t.sign("approve", "alice", PROD2);
    t.sign("approve", "alice", &champion);
    t.sign(
        "reject",
        "carol",
        &[&champion[..], &["--comment", "drift on segment B"]].concat(),
    );
    let r = t.blocked("rejected by carol (\"drift on segment B\"); 1 approval, 1 required: alice");
    assert!(
        r.stdout.contains("Production: version 1 -> version 2"),
        "{r:?}"
    );
    let reg = srv.registry();
    let model = reg.get_model(&t.name).await.expect("read").expect("model");
    assert_eq!(
        model.versions[&2].stage,
        Stage::Production,
        "alice's approval sufficed"
    );
    assert_eq!(model.aliases.get("champion"), None, "{model:#?}");

    // carol approves: her statement replaces her rejection's tag.
    t.sign("approve", "carol", &champion);
    let r = t.run(&["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("2 approvals, 1 required: alice, carol"),
        "{r:?}"
    );
    let model = reg.get_model(&t.name).await.expect("read").expect("model");
    assert_eq!(model.aliases.get("champion"), Some(&2));
    let stamp = &model.versions[&2].tags["modelsync.promoted-at.champion"];
    assert!(stamp.contains(" approved-by=alice,carol"), "{stamp}");
}

/// A statement printed by `--print-statement`, signed with plain
/// `ssh-keygen -Y sign` and stored with MLflow's own Python client, counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_signed_with_plain_ssh_keygen_counts() {
    let srv = server();
    let t = Team::new("appr-keygen", &srv.url, &[], "{required: 1, from: [alice]}");
    let r = t.run(
        &[
            &[
                "approve",
                &t.name,
                "--principal",
                "alice",
                "--print-statement",
            ][..],
            PROD2,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("modelsync-approval v1\n"), "{r:?}");
    assert!(
        r.stdout.contains(&format!("\nregistry: {}\n", srv.url)),
        "{r:?}"
    );
    let statement = t.w.write("statement", &r.stdout);
    let out = Command::new("ssh-keygen")
        .args([
            "-Y",
            "sign",
            "-n",
            "modelsync-approval",
            "-f",
            &t.key("alice"),
        ])
        .arg(&statement)
        .output()
        .expect("ssh-keygen -Y sign");
    assert!(out.status.success(), "{out:?}");
    srv.run_python(&format!(
        "from mlflow import MlflowClient\n\
         record = open({s:?}).read() + open({s:?} + '.sig').read()\n\
         MlflowClient().set_model_version_tag({n:?}, '2', 'modelsync.approval.by-hand', record)\n",
        s = statement.display().to_string(),
        n = t.name
    ));
    let r = t.run(&["plan", "m"]);
    assert!(
        r.stdout
            .contains("passed: approvals 1 of [alice] (1 approval, 1 required: alice)"),
        "{r:?}"
    );
    let r = t.run(&["apply", "m"]);
    assert_eq!(r.code, 5, "champion needs an approval of its own: {r:?}");
    let model = srv
        .registry()
        .get_model(&t.name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(model.versions[&2].stage, Stage::Production);
}

/// A saved plan whose move was blocked is applied once the approvals
/// arrive: `apply --plan` evaluates the gates again (and archives the
/// version the move replaces), rather than refusing a stale plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_saved_plan_moves_once_the_approval_arrives() {
    let srv = server();
    let t = Team::new(
        "appr-saved",
        &srv.url,
        &[],
        "{required: 2, from: [alice, bob]}",
    );
    let plan = t.w.path().join("plan.json").display().to_string();
    let r = t.run(&["plan", "m", "--out", &plan]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("blocked: approvals 2 of [alice, bob] (0 approvals, 2 required)"),
        "{r:?}"
    );
    t.sign("approve", "alice", PROD2);
    t.sign("approve", "bob", &[PROD2, &["--out", "m"]].concat());
    // bob's file came after the plan: only the tag-borne approval is new.
    let r = t.run(&["apply", "--plan", &plan]);
    assert_eq!(r.code, 5, "bob's file is not in the reviewed plan: {r:?}");
    assert!(r.stdout.contains("1 approval, 2 required: alice"), "{r:?}");
    t.sign("approve", "bob", PROD2);
    let r = t.run(&["apply", "--plan", &plan]);
    assert_eq!(r.code, 5, "champion stays blocked: {r:?}");
    assert!(
        r.stdout.contains("2 approvals, 2 required: alice, bob"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("not converged"), "{r:?}");
    let model = srv
        .registry()
        .get_model(&t.name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(model.versions[&2].stage, Stage::Production, "{model:#?}");
    assert_eq!(
        model.versions[&1].stage,
        Stage::Archived,
        "the replaced holder"
    );
}

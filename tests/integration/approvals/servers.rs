//! Signed approvals on the harness's other MLflow set-ups: an approval
//! made in one workspace does not count in another (the workspaces
//! server); and on the basic-auth server, a person with only READ on the
//! model approves by committing the record as a file, which the daemon in
//! git mode (`watch --git … --once`) reads from the commit and counts.

use modelsync::registry::Registry;
use modelsync::registry::mlflow::MlflowConfig;
use modelsync::state::Stage;

use super::{PROD2, Team, manifest};
use crate::support::git::GitRepo;
use crate::support::mlflow::unique;
use crate::support::servers::{TEAM_WORKSPACE, auth_tls, workspaces};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_made_in_another_workspace_does_not_count() {
    let srv = workspaces();
    let env = [("MLFLOW_WORKSPACE", TEAM_WORKSPACE)];
    let t = Team::new("appr-ws", &srv.url, &env, "{required: 1, from: [alice]}");
    t.sign("approve", "alice", PROD2);
    // The same model in the default workspace, its version 2 carrying a
    // copy of team-a's approval.
    let default = [("MLFLOW_WORKSPACE", "")];
    t.w.write("d/model.yaml", &manifest(&t.name, None));
    let r = t.run_env(&default, &["apply", "d"]);
    assert_eq!(r.code, 0, "{r:?}");
    let team = srv.registry_with(MlflowConfig {
        workspace: Some(TEAM_WORKSPACE.into()),
        ..MlflowConfig::default()
    });
    let there = team
        .get_model(&t.name)
        .await
        .expect("read")
        .expect("in team-a");
    let key = "modelsync.approval.Production.alice";
    let record = &there.versions[&2].tags[key];
    assert!(
        record.contains(&format!(
            "\nregistry: {}#workspace={TEAM_WORKSPACE}\n",
            srv.url
        )),
        "{record}"
    );
    let here = srv.registry();
    here.set_version_tag(&t.name, 2, key, record)
        .await
        .expect("copy the tag");

    t.w.write(
        "d/model.yaml",
        &manifest(&t.name, Some("{required: 1, from: [alice]}")),
    );
    for f in ["modelsync.toml", "approvers"] {
        std::fs::copy(t.w.path().join("m").join(f), t.w.path().join("d").join(f)).expect("copy");
    }
    let r = t.run_env(&default, &["apply", "d"]);
    assert_eq!(r.code, 5, "{r:?}");
    let why = format!(
        "not counted: tag {key}: signed for registry {}#workspace={TEAM_WORKSPACE}",
        srv.url
    );
    assert!(r.stdout.contains(&why), "{r:?}");
    let model = here.get_model(&t.name).await.expect("read").expect("model");
    assert_eq!(model.versions[&2].stage, Stage::None);

    // In team-a it counts.
    let r = t.run(&["apply", "m"]);
    assert!(r.stdout.contains("1 approval, 1 required: alice"), "{r:?}");
    let there = team
        .get_model(&t.name)
        .await
        .expect("read")
        .expect("in team-a");
    assert_eq!(there.versions[&2].stage, Stage::Production);
}

/// The model's humans have only READ: alice cannot tag the version, so
/// she commits her signed approval as a file; the daemon (modelsync's own
/// principal, the admin here) reads it from the commit and moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readers_approval_committed_as_a_file_passes_the_gate_through_the_daemon() {
    let srv = auth_tls();
    let admin: Vec<(&str, &str)> = srv
        .mlflow
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let t = Team::new(
        "appr-git",
        &srv.mlflow.url,
        &admin,
        "{required: 1, from: [alice]}",
    );
    let human = unique("alice");
    let password = format!("pw-{:016x}", fastrand::u64(..));
    srv.create_user(&human, &password).await;
    srv.grant_model(&human, &t.name, "READ").await;
    let as_human = [
        ("MLFLOW_TRACKING_USERNAME", human.as_str()),
        ("MLFLOW_TRACKING_PASSWORD", password.as_str()),
    ];

    let repo = GitRepo::new(&t.w.path().join("git"));
    for f in ["approvers", "modelsync.toml"] {
        let text = std::fs::read_to_string(t.w.path().join("m").join(f)).expect("read");
        std::fs::create_dir_all(repo.work.join("m")).expect("mkdir");
        std::fs::write(repo.work.join("m").join(f), text).expect("write");
    }
    let gated = std::fs::read_to_string(t.w.path().join("m/model.yaml")).expect("read");
    repo.push("m/model.yaml", &gated);
    let cache = t.w.path().join("cache").display().to_string();
    let once = [
        "watch",
        "--git",
        &repo.url,
        "--path",
        "m",
        "--once",
        "--cache-dir",
        &cache,
    ];
    let r = t.run(&once);
    assert_eq!(r.code, 5, "nobody approved yet: {r:?}");

    // A tag is refused: READ only.
    let key = t.key("alice");
    let approve = |extra: &[&str]| {
        let args = [&["approve", &t.name, "--key", &key][..], PROD2, extra].concat();
        t.run_env(&as_human, &args)
    };
    let r = approve(&["--principal", "alice"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("storing the approval as tag"), "{r:?}");
    // A file, for a commit; the principal comes from the approvers file.
    let out = repo.work.join("m").display().to_string();
    let r = approve(&["--out", &out]);
    assert_eq!(r.code, 0, "{r:?}");
    let champion = [
        &["approve", &t.name, "--key", &key, "--out", &out][..],
        &["--alias", "champion", "--version", "2"],
    ]
    .concat();
    let r = t.run_env(&as_human, &champion);
    assert_eq!(r.code, 0, "{r:?}");
    repo.push("m/model.yaml", &gated);

    let r = t.run(&once);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("1 approval, 1 required: alice"), "{r:?}");
    let model = srv
        .admin()
        .get_model(&t.name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(model.versions[&2].stage, Stage::Production, "{model:#?}");
    assert_eq!(model.aliases.get("champion"), Some(&2));
    assert!(
        model.versions[&2]
            .tags
            .keys()
            .all(|k| !k.starts_with("modelsync.approval.")),
        "the approval is in git, not in the registry"
    );
    let stamp = &model.versions[&2].tags["modelsync.promoted-at.Production"];
    assert!(stamp.contains(" approved-by=alice"), "{stamp}");
}

//! Unit tests of the embedded registry: semantics, file format, locking.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::*;
use crate::registry::Scope;
use crate::state::{LiveExperiment, ResolvedSource, SmallMap, SourceResolution, VersionStatus};

fn new_version(declared: &str) -> NewVersion {
    NewVersion {
        declared_source: declared.to_string(),
        source: declared.to_string(),
        run_id: None,
        model_id: None,
        description: None,
        tags: BTreeMap::new(),
    }
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.json");
    (dir, path)
}

fn all() -> SnapshotRequest {
    SnapshotRequest {
        models: Scope::All,
        experiments: BTreeSet::new(),
    }
}

async fn seeded(path: &Path) -> EmbeddedRegistry {
    let reg = EmbeddedRegistry::open(path, true).expect("open");
    let tags = BTreeMap::from([("team".to_string(), "ml".to_string())]);
    reg.create_model("m", Some("a model"), &tags)
        .await
        .expect("create model");
    reg.create_version("m", &new_version("s3://b/1"))
        .await
        .expect("v1");
    reg.create_version("m", &new_version("s3://b/2"))
        .await
        .expect("v2");
    reg.transition_stage("m", 1, Stage::Production)
        .await
        .expect("stage");
    reg.set_alias("m", "champion", 1).await.expect("alias");
    reg.create_experiment("exp", None, &BTreeMap::new())
        .await
        .expect("experiment");
    reg.insert_run(LiveRun {
        run_id: "r1".into(),
        experiment_id: "0".into(),
        metrics: BTreeMap::from([
            ("accuracy".to_string(), 0.93),
            ("loss".to_string(), f64::NAN),
        ]),
    });
    reg.flush().await.expect("flush");
    reg
}

#[tokio::test]
async fn missing_file_is_empty_and_not_created_until_flush() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sub/dir/registry.json");
    let reg = EmbeddedRegistry::open(&path, true).expect("open");
    assert_eq!(
        reg.snapshot(&all()).await.expect("snapshot"),
        LiveState::default()
    );
    reg.flush().await.expect("no-op flush");
    assert!(
        !dir.path().join("sub").exists(),
        "a clean flush creates nothing"
    );
    reg.create_model("m", None, &BTreeMap::new())
        .await
        .expect("create");
    reg.flush().await.expect("flush");
    assert!(path.exists());
    assert!(store::lock_path(&path).exists());
    assert_eq!(reg.uri(), format!("file:{}", path.display()));
}

#[tokio::test]
async fn versions_number_from_one_and_are_ready_in_stage_none() {
    let (_d, path) = tmp();
    let reg = EmbeddedRegistry::open(&path, true).expect("open");
    reg.create_model("m", None, &BTreeMap::new())
        .await
        .expect("create");
    let mut new = new_version("runs:/abc/model");
    new.source = "models:/m-123".into();
    new.run_id = Some("abc".into());
    new.model_id = Some("m-123".into());
    new.description = Some("first".into());
    new.tags.insert("dataset".into(), "2026-11".into());
    let v1 = reg.create_version("m", &new).await.expect("v1");
    assert_eq!(v1.version, 1);
    assert_eq!(v1.stage, Stage::None);
    assert_eq!(v1.status, VersionStatus::Ready);
    assert_eq!(v1.source, "models:/m-123");
    assert_eq!((v1.run_id.as_str(), v1.model_id.as_str()), ("abc", "m-123"));
    assert_eq!(v1.description, "first");
    assert_eq!(
        v1.tags.get("modelsync.source").map(String::as_str),
        Some("runs:/abc/model")
    );
    assert_eq!(v1.tags.get("dataset").map(String::as_str), Some("2026-11"));
    assert!(v1.creation_timestamp > 0);
    let v2 = reg
        .create_version("m", &new_version("s3://b/2"))
        .await
        .expect("v2");
    assert_eq!(v2.version, 2);
    let err = reg
        .create_version("missing", &new_version("s3://x"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn create_version_never_registers_a_source_twice() {
    let (_d, path) = tmp();
    let reg = EmbeddedRegistry::open(&path, true).expect("open");
    reg.create_model("m", None, &BTreeMap::new())
        .await
        .expect("create");
    let mut new = new_version("runs:/r1/model");
    new.source = "models:/m-1".into();
    new.run_id = Some("r1".into());
    let first = reg.create_version("m", &new).await.expect("first");
    // Same declared source.
    assert_eq!(reg.create_version("m", &new).await.expect("again"), first);
    // A version registered by hand with the same source and run, no tag.
    reg.delete_version_tag("m", 1, "modelsync.source")
        .await
        .expect("untag");
    let mut other = new.clone();
    other.declared_source = "something-else".into();
    assert_eq!(
        reg.create_version("m", &other)
            .await
            .expect("by source")
            .version,
        1
    );
    // Same source but another run is a new version.
    other.run_id = Some("r2".into());
    assert_eq!(
        reg.create_version("m", &other).await.expect("new").version,
        2
    );
    assert_eq!(
        reg.get_model("m")
            .await
            .expect("get")
            .expect("model")
            .versions
            .len(),
        2
    );
}

#[tokio::test]
async fn numbers_are_never_reused_after_reopen() {
    let (_d, path) = tmp();
    seeded(&path).await;
    // Simulate a (soft-)deleted version: drop v2 from the file, keep next_version.
    let mut data = store::load(&path).expect("load");
    data.models.get_mut("m").expect("m").versions.remove(&2);
    store::write_atomic(&path, &store::serialize(&data)).expect("write");
    let reg = EmbeddedRegistry::open(&path, true).expect("reopen");
    let v = reg
        .create_version("m", &new_version("s3://b/3"))
        .await
        .expect("v3");
    assert_eq!(v.version, 3);
}

#[tokio::test]
async fn transition_moves_only_one_version() {
    let (_d, path) = tmp();
    let reg = seeded(&path).await;
    reg.transition_stage("m", 2, Stage::Production)
        .await
        .expect("v2 production");
    let m = reg.get_model("m").await.expect("get").expect("model");
    assert_eq!(
        m.holders(Stage::Production)
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    let err = reg
        .transition_stage("m", 9, Stage::Staging)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn alias_rules_and_moves() {
    let (_d, path) = tmp();
    let reg = seeded(&path).await;
    reg.set_alias("m", "champion", 2).await.expect("move");
    reg.set_alias("m", "challenger", 2)
        .await
        .expect("second alias");
    let m = reg.get_model("m").await.expect("get").expect("model");
    assert_eq!(
        m.aliases_of(2),
        vec!["challenger".to_string(), "champion".to_string()]
    );
    for bad in ["latest", "LATEST", "v3", "V1", "a b", ""] {
        let err = reg.set_alias("m", bad, 1).await.unwrap_err();
        assert!(matches!(err, RegistryError::Invalid(_)), "{bad:?}: {err}");
    }
    let err = reg.set_alias("m", "champion", 7).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
    let err = reg.set_alias("nope", "champion", 1).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
    reg.delete_alias("m", "champion").await.expect("delete");
    reg.delete_alias("m", "champion")
        .await
        .expect("delete is idempotent");
    let err = reg.delete_alias("nope", "champion").await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
    let m = reg.get_model("m").await.expect("get").expect("model");
    assert_eq!(
        m.aliases,
        SmallMap::from_iter([("challenger".to_string(), 2)])
    );
}

#[tokio::test]
async fn models_tags_descriptions_and_timestamps() {
    let (_d, path) = tmp();
    let reg = seeded(&path).await;
    let err = reg
        .create_model("m", None, &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::AlreadyExists(_)), "{err}");
    for bad in ["", "a/b", "a:b"] {
        let err = reg
            .create_model(bad, None, &BTreeMap::new())
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::Invalid(_)), "{bad:?}: {err}");
    }
    let before = reg.get_model("m").await.expect("get").expect("model");
    std::thread::sleep(std::time::Duration::from_millis(3));
    reg.set_version_tag("m", 2, "k", "v")
        .await
        .expect("version tag");
    let after = reg.get_model("m").await.expect("get").expect("model");
    assert!(after.last_updated_timestamp > before.last_updated_timestamp);
    assert_eq!(after.creation_timestamp, before.creation_timestamp);
    assert!(after.versions[&2].last_updated_timestamp > before.versions[&2].last_updated_timestamp);

    let err = reg.set_model_tag("m", "bad$key", "v").await.unwrap_err();
    assert!(matches!(err, RegistryError::Invalid(_)), "{err}");
    let err = reg
        .update_model_description("m", &"d".repeat(5001))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Invalid(_)), "{err}");
    let mut long = new_version("s3://long");
    long.source = format!("s3://{}", "x".repeat(500));
    let err = reg.create_version("m", &long).await.unwrap_err();
    assert!(matches!(err, RegistryError::Invalid(_)), "{err}");
    reg.delete_model_tag("m", "absent")
        .await
        .expect("idempotent delete");
    reg.delete_version_tag("m", 1, "absent")
        .await
        .expect("idempotent delete");
    let err = reg.set_version_tag("m", 9, "k", "v").await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn experiments_and_snapshot_scope() {
    let (_d, path) = tmp();
    let reg = seeded(&path).await;
    let tags = BTreeMap::from([("team".to_string(), "ml".to_string())]);
    let id = reg
        .create_experiment("exp2", Some("s3://bucket/x"), &tags)
        .await
        .expect("exp2");
    assert_eq!(id, "1");
    let err = reg
        .create_experiment("exp2", None, &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::AlreadyExists(_)), "{err}");
    reg.set_experiment_tag("1", "owner", "me")
        .await
        .expect("tag");
    let err = reg
        .set_experiment_tag("42", "owner", "me")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");

    reg.create_model("other", None, &BTreeMap::new())
        .await
        .expect("other");
    let req = SnapshotRequest {
        models: Scope::Named(BTreeSet::from(["m".to_string(), "ghost".to_string()])),
        experiments: BTreeSet::from(["exp2".to_string()]),
    };
    let live = reg.snapshot(&req).await.expect("snapshot");
    assert_eq!(live.models.keys().collect::<Vec<_>>(), vec!["m"]);
    assert_eq!(
        live.experiments["exp2"],
        LiveExperiment {
            experiment_id: "1".into(),
            name: "exp2".into(),
            artifact_location: "s3://bucket/x".into(),
            tags: BTreeMap::from([("owner".into(), "me".into()), ("team".into(), "ml".into())]),
        }
    );
    assert!(live.runs.is_empty() && live.resolved_sources.is_empty());
    let everything = reg.snapshot(&all()).await.expect("snapshot");
    assert_eq!(everything.models.len(), 2);
    assert_eq!(
        everything.experiments["exp"].artifact_location,
        "file:./mlruns/0"
    );

    let runs = reg
        .get_runs(&["r1".into(), "unknown".into()])
        .await
        .expect("runs");
    assert_eq!(runs.keys().collect::<Vec<_>>(), vec!["r1"]);
    assert!(runs["r1"].metrics["loss"].is_nan());
    assert!(
        reg.resolve_sources(&["s3://b/1".into()])
            .await
            .expect("resolve")
            .is_empty()
    );
}

#[tokio::test]
async fn no_op_writes_leave_the_file_byte_identical() {
    let (_d, path) = tmp();
    drop(seeded(&path).await);
    let before = std::fs::read(&path).expect("read");
    let modified = std::fs::metadata(&path)
        .expect("meta")
        .modified()
        .expect("mtime");
    let reg = EmbeddedRegistry::open(&path, true).expect("open");
    // Writes that store what is already there.
    reg.create_version("m", &new_version("s3://b/1"))
        .await
        .expect("existing");
    reg.transition_stage("m", 1, Stage::Production)
        .await
        .expect("same stage");
    reg.set_alias("m", "champion", 1).await.expect("same alias");
    reg.set_model_tag("m", "team", "ml")
        .await
        .expect("same tag");
    reg.update_model_description("m", "a model")
        .await
        .expect("same description");
    reg.delete_alias("m", "absent").await.expect("absent alias");
    reg.flush().await.expect("flush");
    drop(reg);
    assert_eq!(std::fs::read(&path).expect("read"), before);
    assert_eq!(
        std::fs::metadata(&path)
            .expect("meta")
            .modified()
            .expect("mtime"),
        modified
    );
}

#[tokio::test]
async fn round_trip_is_stable_and_deterministic() {
    let (_d, path) = tmp();
    drop(seeded(&path).await);
    let bytes = std::fs::read(&path).expect("read");
    assert!(bytes.ends_with(b"}\n"));
    let data = store::parse(&path, &bytes).expect("parse");
    assert_eq!(store::serialize(&data), bytes);
    let text = String::from_utf8(bytes).expect("utf-8");
    assert!(
        text.starts_with("{\n  \"format\": \"modelsync-embedded/v1\",\n"),
        "{text}"
    );
    assert!(text.contains("\"loss\": \"NaN\""), "{text}");
    assert!(text.contains("\"next_version\": 3"), "{text}");
}

#[tokio::test]
async fn write_snapshot_reproduces_the_live_state() {
    let (_d, path) = tmp();
    let reg = seeded(&path).await;
    let mut live = reg.snapshot(&all()).await.expect("snapshot");
    live.runs = reg.get_runs(&["r1".into()]).await.expect("runs");
    live.resolved_sources.insert(
        "runs:/r1/model".into(),
        ResolvedSource {
            source: "models:/m-1".into(),
            run_id: Some("r1".into()),
            model_id: Some("m-1".into()),
            location: None,
        },
    );
    live.unresolvable_sources
        .insert("runs:/gone/model".into(), "run gone does not exist".into());
    drop(reg);
    let copy = path.with_file_name("snapshot.json");
    EmbeddedRegistry::write_snapshot(&copy, &live).expect("write snapshot");
    let reopened = EmbeddedRegistry::open(&copy, false).expect("open copy");
    let mut again = reopened.snapshot(&all()).await.expect("snapshot");
    again.runs = reopened.get_runs(&["r1".into()]).await.expect("runs");
    let answers = reopened
        .resolve_sources(&["runs:/r1/model".into(), "runs:/gone/model".into()])
        .await
        .expect("resolve");
    assert_eq!(
        answers.get("runs:/gone/model"),
        Some(&SourceResolution::NotFound(
            "run gone does not exist".into()
        )),
        "an offline plan refuses what the online one refused"
    );
    again.record_resolutions(answers);
    // NaN != NaN, so compare the serialized forms.
    assert_eq!(
        serde_json::to_string(&again).expect("json"),
        serde_json::to_string(&live).expect("json")
    );
    // The same content as the original file, apart from resolved sources.
    let original = store::load(&path).expect("load");
    let mut copied = store::load(&copy).expect("load");
    copied.resolved_sources.clear();
    copied.unresolvable_sources.clear();
    assert_eq!(store::serialize(&copied), store::serialize(&original));
}

#[tokio::test]
async fn read_only_registry_refuses_to_flush_changes() {
    let (_d, path) = tmp();
    drop(seeded(&path).await);
    let reg = EmbeddedRegistry::open(&path, false).expect("open");
    reg.flush().await.expect("clean flush is fine");
    reg.set_model_tag("m", "x", "y").await.expect("in memory");
    let err = reg.flush().await.unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
}

#[test]
fn corrupt_and_foreign_files_are_errors_naming_the_file() {
    let (_d, path) = tmp();
    let cases: [(&str, &str); 6] = [
        (
            "{\n  \"format\": \"modelsync-embedded/v1\",\n  \"models\": {,}\n}\n",
            "registry.json:3:",
        ),
        ("", "registry.json:1:0"),
        (
            "{\"format\": \"modelsync-embedded/v9\"}",
            "unknown embedded registry format \"modelsync-embedded/v9\"",
        ),
        ("{\"models\": {}}", "no \"format\" field"),
        (
            "{\"format\": \"modelsync-embedded/v1\", \"modles\": {}}",
            "unknown field `modles`",
        ),
        (
            "{\"format\": \"modelsync-embedded/v1\", \"models\": {\"m\": {\"name\": \"m\", \"next_version\": 1, \
             \"versions\": {\"1\": {\"version\": 1}}}}}",
            "next_version 1 is not above version 1",
        ),
    ];
    for (content, expected) in cases {
        std::fs::write(&path, content).expect("write");
        let err = EmbeddedRegistry::open(&path, false)
            .err()
            .expect("must fail");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(expected), "expected {expected:?} in {msg}");
        assert!(matches!(err, RegistryError::Other(_)), "{msg}");
    }
}

#[test]
fn concurrent_writers_serialize_on_the_lock() {
    let (_d, path) = tmp();
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let reg = EmbeddedRegistry::open(&path, true).expect("open");
            reg.create_model("m", None, &BTreeMap::new())
                .await
                .expect("model");
            reg.flush().await.expect("flush");
        });
    }
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("runtime");
                barrier.wait();
                rt.block_on(async {
                    let reg = EmbeddedRegistry::open(&path, true).expect("open");
                    let live = reg.snapshot(&all()).await.expect("snapshot");
                    let seen = live.models["m"].versions.len();
                    // Hold the lock a while so the other writer surely waits.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    reg.create_version("m", &new_version(&format!("s3://b/{i}")))
                        .await
                        .expect("version");
                    reg.set_model_tag("m", &format!("writer{i}"), "done")
                        .await
                        .expect("tag");
                    reg.flush().await.expect("flush");
                    seen
                })
            })
        })
        .collect();
    let mut seen: Vec<usize> = workers
        .into_iter()
        .map(|w| w.join().expect("worker"))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![0, 1],
        "the second writer saw the first one's version"
    );
    let data = store::load(&path).expect("load");
    let m = &data.models["m"];
    assert_eq!(m.versions.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    assert!(m.tags.contains_key("writer0") && m.tags.contains_key("writer1"));
}

#[test]
fn a_reader_waits_for_the_writer() {
    let (_d, path) = tmp();
    let writer = EmbeddedRegistry::open(&path, true).expect("writer");
    let lock = std::fs::File::open(store::lock_path(&path)).expect("lock file");
    assert!(matches!(
        lock.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    ));
    drop(writer);
    lock.try_lock_shared().expect("free after drop");
    // Readers share.
    let _r1 = EmbeddedRegistry::open(&path, false).expect("reader 1");
    let _r2 = EmbeddedRegistry::open(&path, false).expect("reader 2");
}

#[tokio::test]
async fn opens_through_the_registry_uri() {
    let (_d, path) = tmp();
    drop(seeded(&path).await);
    let opts = crate::registry::OpenOptions { write: false };
    let reg = crate::registry::open(&format!("file:{}", path.display()), &opts)
        .await
        .expect("open");
    assert!(matches!(reg, crate::registry::AnyRegistry::Embedded(_)));
    assert_eq!(reg.uri(), format!("file:{}", path.display()));
    assert!(reg.get_model("m").await.expect("get").is_some());
}

#[tokio::test]
async fn a_writer_on_a_missing_directory_refuses_to_overwrite_a_file_created_meanwhile() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("new/registry.json");
    let late = EmbeddedRegistry::open(&path, true).expect("open before the directory exists");
    late.create_model("late", None, &BTreeMap::new())
        .await
        .expect("create");
    drop(seeded(&path).await);
    let err = late.flush().await.unwrap_err();
    assert!(err.to_string().contains("another process created"), "{err}");
    assert!(
        store::load(&path).expect("load").models.contains_key("m"),
        "the other writer's file survives"
    );
}

#[tokio::test]
async fn a_write_never_adds_a_secret_to_the_file() {
    crate::secret::register("TEST_EMBEDDED_TOKEN", "tok-embedded-0000-secret");
    let (_dir, path) = tmp();
    let reg = EmbeddedRegistry::open(&path, true).expect("open");
    reg.create_model("m", Some("tok-embedded-0000-secret"), &BTreeMap::new())
        .await
        .expect("in memory");
    let err = reg.flush().await.expect_err("refused");
    assert!(
        matches!(&err, RegistryError::Leak { leak, .. } if leak.name == "TEST_EMBEDDED_TOKEN"),
        "{err}"
    );
    assert!(!path.exists(), "nothing written");
    assert!(!err.to_string().contains("tok-embedded"), "{err}");
    drop(reg);

    // A file that already held it (written by another tool) may be written
    // on: the write adds nothing new.
    let data = Data {
        models: BTreeMap::from([(
            "held".to_string(),
            StoredModel::from_live(&LiveModel {
                name: "held".into(),
                description: "tok-embedded-0000-secret".into(),
                ..LiveModel::default()
            }),
        )]),
        ..Data::default()
    };
    store::write_atomic(&path, &store::serialize(&data)).expect("seed");
    let reg = EmbeddedRegistry::open(&path, true).expect("open");
    reg.create_model("other", Some("fine"), &BTreeMap::new())
        .await
        .expect("create");
    reg.flush().await.expect("no new secret");
    // A second secret is still refused.
    crate::secret::register("TEST_EMBEDDED_TOKEN_2", "tok-embedded-2222-secret");
    reg.update_model_description("other", "tok-embedded-2222-secret")
        .await
        .expect("in memory");
    assert!(reg.flush().await.is_err());
}

//! The `digest: unchanged` gate against real artifacts: a file overwritten
//! after the digest was recorded blocks the move (exit 5) naming the file,
//! through `apply`, `plan --out` + `apply --plan` and `watch --once`, on
//! local artifacts and on S3; a saved plan made before the overwrite is
//! stale (exit 4).

use std::path::Path;

use super::{local_path, recorded, resolve_json, workdir, write_manifest};
use crate::copy::{run, train};
use crate::support::mlflow::{MlflowServer, server, unique};
use crate::support::servers;

const GATE: &str = "digest: unchanged";

/// A model logged with MLflow's client, pinned by a first move into
/// Staging; returns (name, version, its URI as `resolve` prints it).
async fn pinned(srv: &MlflowServer) -> (String, u64, String, crate::support::cli::Workdir) {
    let name = unique("serve-gate");
    let v = train(srv, &name, 0.9, 1.0);
    let wd = workdir(&name, v, "Staging", &[]);
    let r = run(&wd, &srv.url, &srv.env, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(recorded(srv, &name, v).await.0.starts_with("sha256:"));
    let uri = resolve_json(srv, &format!("{name}@champion"))["uri"]
        .as_str()
        .expect("uri")
        .to_string();
    (name, v, uri, wd)
}

fn append(file: &Path, text: &str) {
    let mut body = std::fs::read(file).expect("read the artifact");
    body.extend_from_slice(text.as_bytes());
    std::fs::write(file, body).expect("overwrite the artifact");
}

/// What every blocked run must say.
fn names_the_file(out: &str) {
    assert!(
        out.contains("digest unchanged")
            && out.contains("the bytes changed since modelsync recorded their digest")
            && out.contains("file requirements.txt changed"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overwritten_local_artifact_blocks_the_move_naming_the_file() {
    let srv = server();
    let (name, v, uri, wd) = pinned(srv).await;
    // Unchanged bytes pass: a saved plan made now promotes.
    write_manifest(&wd, &name, v, "Production", &[GATE]);
    let before = run(&wd, &srv.url, &[], &["plan", "m", "--out", "before.json"]);
    assert_eq!(before.code, 0, "{before:?}");
    assert!(before.stdout.contains("stage Production"), "{before:?}");
    assert!(!before.stdout.contains("blocked"), "{before:?}");

    append(
        &local_path(&uri).join("requirements.txt"),
        "tampered==1.0\n",
    );

    let r = run(&wd, &srv.url, &[], &["apply", "--plan", "before.json"]);
    assert_eq!(r.code, 4, "the plan saw other bytes: {r:?}");
    assert!(
        r.stderr
            .contains(&format!("version {v}'s bytes changed since the plan")),
        "{r:?}"
    );
    let r = run(&wd, &srv.url, &[], &["apply", "m"]);
    assert_eq!(r.code, 5, "{r:?}");
    names_the_file(&r.stdout);
    let after = run(&wd, &srv.url, &[], &["plan", "m", "--out", "after.json"]);
    names_the_file(&after.stdout);
    let r = run(&wd, &srv.url, &[], &["apply", "--plan", "after.json"]);
    assert_eq!(r.code, 5, "{r:?}");
    names_the_file(&r.stdout);
    let r = run(&wd, &srv.url, &[], &["watch", "m", "--once"]);
    assert_eq!(r.code, 5, "{r:?}");
    names_the_file(&format!("{}{}", r.stdout, r.stderr));
    let m = crate::copy::model(&srv.registry(), &name).await;
    assert_eq!(
        m.versions[&v].stage,
        modelsync::state::Stage::Staging,
        "never moved"
    );
    // resolve refuses the changed bytes too, naming the file.
    let r = run(
        &wd,
        &srv.url,
        &[],
        &["resolve", &format!("{name}@champion")],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("file requirements.txt changed"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overwritten_s3_artifact_blocks_the_move_naming_the_file() {
    let s = servers::postgres_s3();
    let srv = &s.mlflow;
    let (name, v, uri, wd) = pinned(srv).await;
    let key = format!(
        "{}/requirements.txt",
        uri.strip_prefix(&format!("s3://{}/", servers::BUCKET))
            .expect("in the bucket")
    );
    srv.run_python(&format!(
        "import boto3\ns3 = boto3.client('s3', endpoint_url={endpoint:?})\n\
         body = s3.get_object(Bucket={bucket:?}, Key={key:?})['Body'].read()\n\
         s3.put_object(Bucket={bucket:?}, Key={key:?}, Body=body + b'tampered==1.0\\n')\n",
        endpoint = s.s3_endpoint,
        bucket = servers::BUCKET,
    ));
    write_manifest(&wd, &name, v, "Production", &[GATE]);
    let r = run(&wd, &srv.url, &srv.env, &["apply", "m"]);
    assert_eq!(r.code, 5, "{r:?}");
    names_the_file(&r.stdout);
}

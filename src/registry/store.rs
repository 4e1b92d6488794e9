//! Artifact stores, by the URI scheme of a version's files: MLflow's
//! proxied artifacts (`mlflow-artifacts:`, through the server's artifact
//! REST API `/api/2.0/mlflow-artifacts/artifacts/…`, so only with an
//! MLflow server to go through), S3 (`s3://`, with `MLFLOW_S3_ENDPOINT_URL`
//! and AWS's variables, through `object_store`) and local paths (`file:`
//! or a bare absolute path). Copies read from and write to them; `resolve`,
//! the recorded digest and the `digest: unchanged` gate hash them
//! ([`Store::tree`]).
//!
//! Files are streamed: a download is a stream of chunks, an upload takes
//! one, so a copy or a digest holds a few chunks in memory whatever the
//! model's size. Only regular files are read: a local tree holding a
//! symbolic link is refused (it could point anywhere on the host). Every
//! error names the registry and the object.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use reqwest::Method;
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub mod cache;

pub use cache::HashCache;

use crate::registry::{RegistryError, Result, error_chain};
use crate::state::{TreeDigest, TreeFile};

/// Files hashed at once while a tree's digest is computed.
const HASH_CONCURRENCY: usize = 4;

/// A stream of file chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// What a proxied store needs of the MLflow server that proxies it: a
/// request to its artifact REST API with the server's authentication and
/// workspace. `registry/mlflow/` implements it, so the imports run one way
/// (`mlflow/` -> `store`).
pub trait ArtifactProxy: Sync {
    /// A request to `path` under the server's URL, counted as a read
    /// (`read`) or a write.
    fn artifact_request(&self, method: Method, path: &str, read: bool) -> reqwest::RequestBuilder;
}

/// One artifact location: a store and a root path in it.
pub struct Store<'a> {
    kind: Kind<'a>,
    /// The URI as given (for messages).
    uri: String,
    /// Which registry this is (for messages): `registry dev (http://…)`.
    whose: String,
}

enum Kind<'a> {
    Proxied {
        reg: &'a dyn ArtifactProxy,
        root: String,
    },
    S3 {
        store: Arc<AmazonS3>,
        root: String,
    },
    Local {
        root: PathBuf,
    },
}

/// A file as listed: its path under the root, size, and what tells a
/// rewrite apart without reading it (ETag, modification time; empty when
/// the store has none).
struct Listed {
    path: String,
    size: u64,
    stamp: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListPage {
    files: Vec<ListEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListEntry {
    path: String,
    is_dir: bool,
    #[serde(deserialize_with = "size")]
    file_size: u64,
}

fn size<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    })
}

impl<'a> Store<'a> {
    /// The store behind `uri`, reached through `reg` for proxied
    /// artifacts (without one, a proxied location is refused: only MLflow
    /// can follow it); `whose` names the registry in messages.
    pub fn open(uri: &str, reg: Option<&'a dyn ArtifactProxy>, whose: &str) -> Result<Store<'a>> {
        let kind = if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
            let reg = reg.ok_or_else(|| {
                RegistryError::Invalid(format!(
                    "{whose}: {uri} is proxied by an MLflow server, which only MLflow can follow"
                ))
            })?;
            // `mlflow-artifacts:/path` or `mlflow-artifacts://host:port/path`.
            let path = match rest.strip_prefix("//") {
                Some(auth_path) => auth_path.split_once('/').map_or("", |(_, p)| p),
                None => rest,
            };
            Kind::Proxied {
                reg,
                root: path.trim_matches('/').to_string(),
            }
        } else if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(endpoint) = std::env::var("MLFLOW_S3_ENDPOINT_URL")
                .ok()
                .filter(|e| !e.is_empty())
            {
                b = b
                    .with_endpoint(endpoint.clone())
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            if std::env::var("AWS_REGION").is_err()
                && let Ok(r) = std::env::var("AWS_DEFAULT_REGION")
            {
                b = b.with_region(r);
            }
            // Bounded, so that a store that does not answer (no
            // credentials, an instance-metadata endpoint that is not
            // there) fails a pass in seconds, not minutes.
            let retry = object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: std::time::Duration::from_secs(30),
                ..Default::default()
            };
            b = b.with_retry(retry).with_config(
                object_store::aws::AmazonS3ConfigKey::Client(
                    object_store::ClientConfigKey::ConnectTimeout,
                ),
                "5s",
            );
            let store = b.build().map_err(|e| {
                RegistryError::Invalid(format!("{whose}: cannot open S3 store {uri}: {e}"))
            })?;
            Kind::S3 {
                store: Arc::new(store),
                root: prefix.trim_matches('/').to_string(),
            }
        } else if let Some(path) = uri
            .strip_prefix("file:")
            .or(uri.starts_with('/').then_some(uri))
        {
            let path = path.strip_prefix("//").unwrap_or(path);
            Kind::Local {
                root: PathBuf::from(path),
            }
        } else {
            return Err(RegistryError::Invalid(format!(
                "{whose}: artifact store {uri} is not supported (mlflow-artifacts:, s3:// and file: are)"
            )));
        };
        Ok(Store {
            kind,
            uri: uri.trim_end_matches('/').to_string(),
            whose: whose.to_string(),
        })
    }

    /// Where `path` is, for messages.
    pub fn describe(&self, path: &str) -> String {
        format!("artifact {}/{path} of {}", self.uri, self.whose)
    }

    /// Every file under the root, recursively, sorted by path (not
    /// hashed: `sha256` is empty).
    pub async fn list(&self) -> Result<Vec<TreeFile>> {
        Ok(self
            .listed()
            .await?
            .into_iter()
            .map(|l| TreeFile {
                path: l.path,
                size: l.size,
                sha256: String::new(),
            })
            .collect())
    }

    /// Every file under the root with its sha256, and their digest
    /// (`state::digest`): each file streamed through the hash, a few at
    /// once, never held whole in memory. A file `cache` holds (same path,
    /// size and stamp) is not read again. A file whose length differs
    /// from its listing (rewritten while read) is an error.
    pub async fn tree(&self, cache: &HashCache) -> Result<TreeDigest> {
        let whole = self.whole_store();
        if let Some(why) = whole.as_deref().and_then(|w| cache.failed(w)) {
            return Err(RegistryError::Other(why));
        }
        let read = self.read_tree(cache).await;
        if let (Err(e), Some(store)) = (&read, whole) {
            // Not one object's problem: the store as a whole failed.
            if matches!(
                e,
                RegistryError::Unauthenticated(_) | RegistryError::Other(_)
            ) {
                cache.fail(store, e.to_string());
            }
        }
        read
    }

    /// `s3://bucket` for an S3 store (what fails as a whole), else `None`.
    fn whole_store(&self) -> Option<String> {
        match &self.kind {
            Kind::S3 { .. } => s3_bucket(&self.uri),
            _ => None,
        }
    }

    /// Why the store holding `uri` already failed as a whole in this pass
    /// (see [`HashCache`]), checked before the store is opened: opening
    /// one builds a client (≈ 10 ms), which a pass would otherwise pay for
    /// every source in a bucket it cannot read — twice per apply (the
    /// plan, and the plan under the lease).
    pub fn failed_earlier(uri: &str, cache: &HashCache) -> Option<String> {
        cache.failed(&s3_bucket(uri)?)
    }

    async fn read_tree(&self, cache: &HashCache) -> Result<TreeDigest> {
        let listed = self.listed().await?;
        let files: Vec<TreeFile> = stream::iter(listed)
            .map(|l| self.hash_listed(l, cache))
            .buffered(HASH_CONCURRENCY)
            .try_collect()
            .await?;
        TreeDigest::new(files)
            .map_err(|why| RegistryError::Invalid(format!("{}: {why}", self.describe(""))))
    }

    async fn hash_listed(&self, l: Listed, cache: &HashCache) -> Result<TreeFile> {
        let key = (self.uri.clone(), l.path.clone(), l.size, l.stamp);
        if let Some(sha256) = cache.get(&key) {
            return Ok(TreeFile {
                path: l.path,
                size: l.size,
                sha256,
            });
        }
        let (sha256, n) = hash_stream(self.get(&l.path).await?).await?;
        if n != l.size {
            return Err(RegistryError::Other(format!(
                "{} read as {n} bytes, its listing said {} (rewritten while read?)",
                self.describe(&l.path),
                l.size
            )));
        }
        cache.put(key, sha256.clone());
        Ok(TreeFile {
            path: l.path,
            size: l.size,
            sha256,
        })
    }

    async fn listed(&self) -> Result<Vec<Listed>> {
        let mut out = match &self.kind {
            Kind::Proxied { .. } => self.list_proxied().await?,
            Kind::S3 { store, root } => {
                let prefix = object_store::path::Path::from(root.as_str());
                let metas: Vec<_> = store
                    .list(Some(&prefix))
                    .try_collect()
                    .await
                    .map_err(|e| self.s3_error("", &e))?;
                metas
                    .into_iter()
                    .filter_map(|m| {
                        let full = m.location.to_string();
                        let rel = full.strip_prefix(root.as_str())?.trim_start_matches('/');
                        (!rel.is_empty()).then(|| Listed {
                            path: rel.to_string(),
                            size: m.size,
                            stamp: m.e_tag.clone().unwrap_or_default(),
                        })
                    })
                    .collect()
            }
            Kind::Local { root } => list_local(root).map_err(|e| match e {
                Local::Io(e) => self.io_error("", &e),
                Local::NotRegular(path, what) => RegistryError::Invalid(format!(
                    "{} is {what}; only regular files are read",
                    self.describe(&path)
                )),
            })?,
        };
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn list_proxied(&self) -> Result<Vec<Listed>> {
        let Kind::Proxied { reg, root } = &self.kind else {
            unreachable!("proxied");
        };
        let mut out = Vec::new();
        let mut dirs = vec![String::new()];
        while let Some(dir) = dirs.pop() {
            let path = join(root, &dir);
            let resp = reg
                .artifact_request(Method::GET, "api/2.0/mlflow-artifacts/artifacts", true)
                .query(&[("path", path.as_str())])
                .send()
                .await
                .map_err(|e| self.transport(&dir, &e))?;
            let resp = self.check(resp, &dir, "list").await?;
            let page: ListPage = resp.json().await.map_err(|e| self.transport(&dir, &e))?;
            for f in page.files {
                let name = f.path.rsplit('/').next().unwrap_or(&f.path).to_string();
                let rel = join(&dir, &name);
                if f.is_dir {
                    dirs.push(rel);
                } else {
                    out.push(Listed {
                        path: rel,
                        size: f.file_size,
                        stamp: String::new(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The bytes of the file at `path` (relative to the root), streamed.
    pub async fn get(&self, path: &str) -> Result<ByteStream> {
        match &self.kind {
            Kind::Proxied { reg, root } => {
                let url = format!("api/2.0/mlflow-artifacts/artifacts/{}", join(root, path));
                let resp = reg
                    .artifact_request(Method::GET, &url, true)
                    .send()
                    .await
                    .map_err(|e| self.transport(path, &e))?;
                let resp = self.check(resp, path, "read").await?;
                let what = self.describe(path);
                Ok(resp
                    .bytes_stream()
                    .map_err(move |e| {
                        RegistryError::Unreachable(format!("reading {what} failed: {e}"))
                    })
                    .boxed())
            }
            Kind::S3 { store, root } => {
                let loc = object_store::path::Path::from(join(root, path));
                let got = store.get(&loc).await.map_err(|e| self.s3_error(path, &e))?;
                let what = self.describe(path);
                Ok(got
                    .into_stream()
                    .map_err(move |e| RegistryError::Other(format!("reading {what} failed: {e}")))
                    .boxed())
            }
            Kind::Local { root } => {
                let file = tokio::fs::File::open(root.join(path))
                    .await
                    .map_err(|e| self.io_error(path, &e))?;
                let what = self.describe(path);
                Ok(tokio_util::io::ReaderStream::new(file)
                    .map_err(move |e| RegistryError::Other(format!("reading {what} failed: {e}")))
                    .boxed())
            }
        }
    }

    /// Writes `body` (`size` bytes) to `path`, replacing what is there.
    pub async fn put(&self, path: &str, body: ByteStream, size: u64) -> Result<()> {
        match &self.kind {
            Kind::Proxied { reg, root } => {
                let url = format!("api/2.0/mlflow-artifacts/artifacts/{}", join(root, path));
                let resp = reg
                    .artifact_request(Method::PUT, &url, false)
                    .header(reqwest::header::CONTENT_LENGTH, size)
                    .body(reqwest::Body::wrap_stream(body))
                    .send()
                    .await
                    .map_err(|e| self.transport(path, &e))?;
                self.check(resp, path, "write").await.map(drop)
            }
            Kind::S3 { store, root } => {
                let loc = object_store::path::Path::from(join(root, path));
                let upload = store
                    .put_multipart(&loc)
                    .await
                    .map_err(|e| self.s3_error(path, &e))?;
                let mut w = object_store::WriteMultipart::new(upload);
                let mut body = body;
                while let Some(chunk) = body.next().await {
                    let chunk = chunk?;
                    w.wait_for_capacity(2)
                        .await
                        .map_err(|e| self.s3_error(path, &e))?;
                    w.write(&chunk);
                }
                w.finish().await.map_err(|e| self.s3_error(path, &e))?;
                Ok(())
            }
            Kind::Local { root } => {
                use tokio::io::AsyncWriteExt;
                let target = root.join(path);
                if let Some(dir) = target.parent() {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|e| self.io_error(path, &e))?;
                }
                let mut f = tokio::fs::File::create(&target)
                    .await
                    .map_err(|e| self.io_error(path, &e))?;
                let mut body = body;
                while let Some(chunk) = body.next().await {
                    f.write_all(&chunk?)
                        .await
                        .map_err(|e| self.io_error(path, &e))?;
                }
                f.flush().await.map_err(|e| self.io_error(path, &e))
            }
        }
    }

    async fn check(
        &self,
        resp: reqwest::Response,
        path: &str,
        verb: &str,
    ) -> Result<reqwest::Response> {
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        let what = self.describe(path);
        Err(match status {
            401 => RegistryError::Unauthenticated(format!("{verb} {what}: HTTP 401 {body}")),
            403 => RegistryError::PermissionDenied {
                operation: format!("{verb} {what}"),
                message: format!("HTTP 403 {body}"),
            },
            404 => RegistryError::NotFound(format!("{what} (HTTP 404 on {verb})")),
            _ => RegistryError::Other(format!("{verb} {what}: HTTP {status} {body}")),
        })
    }

    fn transport(&self, path: &str, e: &reqwest::Error) -> RegistryError {
        let detail = error_chain(e);
        RegistryError::Unreachable(format!("{}: {detail}", self.describe(path)))
    }

    fn s3_error(&self, path: &str, e: &object_store::Error) -> RegistryError {
        let what = self.describe(path);
        match e {
            object_store::Error::NotFound { .. } => RegistryError::NotFound(what),
            object_store::Error::PermissionDenied { .. } => RegistryError::PermissionDenied {
                operation: format!("access {what}"),
                message: e.to_string(),
            },
            object_store::Error::Unauthenticated { .. } => {
                RegistryError::Unauthenticated(format!("{what}: {e}"))
            }
            _ => RegistryError::Other(format!("{what}: {e}")),
        }
    }

    fn io_error(&self, path: &str, e: &std::io::Error) -> RegistryError {
        let what = self.describe(path);
        match e.kind() {
            std::io::ErrorKind::NotFound => RegistryError::NotFound(what),
            std::io::ErrorKind::PermissionDenied => RegistryError::PermissionDenied {
                operation: format!("access {what}"),
                message: e.to_string(),
            },
            _ => RegistryError::Other(format!("{what}: {e}")),
        }
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// Why a local tree cannot be listed.
enum Local {
    Io(std::io::Error),
    /// A symbolic link, a device, a pipe or a socket (its path under the
    /// root, and what it is).
    NotRegular(String, &'static str),
}

impl From<std::io::Error> for Local {
    fn from(e: std::io::Error) -> Local {
        Local::Io(e)
    }
}

/// The regular files under `root` (a link or a special file is refused,
/// never followed or opened).
fn list_local(root: &std::path::Path) -> std::result::Result<Vec<Listed>, Local> {
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            let shown = path.to_string_lossy().into_owned();
            // `DirEntry::metadata` does not follow a link.
            let meta = entry.metadata()?;
            if meta.file_type().is_symlink() {
                return Err(Local::NotRegular(shown, "a symbolic link"));
            } else if meta.is_dir() {
                dirs.push(path);
            } else if !meta.is_file() {
                return Err(Local::NotRegular(shown, "not a regular file"));
            } else {
                out.push(Listed {
                    path: shown,
                    size: meta.len(),
                    stamp: local_stamp(&meta),
                });
            }
        }
    }
    Ok(out)
}

/// A local file's modification time and inode, as a cache stamp.
fn local_stamp(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("{}.{}:{}", meta.mtime(), meta.mtime_nsec(), meta.ino())
}

/// The sha256 (lowercase hex) and length of a stream.
pub async fn hash_stream(mut s: ByteStream) -> Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = s.next().await {
        let c = chunk?;
        n += c.len() as u64;
        h.update(&c);
    }
    Ok((format!("{:x}", h.finalize()), n))
}

/// `s3://bucket` of an `s3://bucket/key…` URI.
fn s3_bucket(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("s3://")?;
    Some(format!("s3://{}", rest.split('/').next().unwrap_or(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_that_failed_fails_its_other_keys_before_opening() {
        let cache = HashCache::default();
        assert_eq!(Store::failed_earlier("s3://b/m/v1", &cache), None);
        cache.fail("s3://b".into(), "no credentials".into());
        assert_eq!(
            Store::failed_earlier("s3://b/m/v2", &cache).as_deref(),
            Some("no credentials")
        );
        assert_eq!(Store::failed_earlier("s3://other/m/v1", &cache), None);
        assert_eq!(Store::failed_earlier("gs://b/m/v1", &cache), None);
    }
}

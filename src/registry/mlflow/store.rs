//! Artifact stores a copy reads from and writes to, by the URI scheme of a
//! version's files: MLflow's proxied artifacts (`mlflow-artifacts:`,
//! through the server's artifact REST API
//! `/api/2.0/mlflow-artifacts/artifacts/…`), S3 (`s3://`, with
//! `MLFLOW_S3_ENDPOINT_URL` and AWS's variables, through `object_store`)
//! and local paths (`file:` or a bare absolute path).
//!
//! Files are streamed: a download is a stream of chunks, an upload takes
//! one, so a copy holds a few chunks in memory whatever the model's size.
//! Every error names the registry and the object.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use reqwest::Method;

use super::MlflowRegistry;
use super::wire::ArtifactPage;
use crate::registry::{RegistryError, Result};
use crate::state::CopyFile;

/// A stream of file chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

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
        reg: &'a MlflowRegistry,
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

impl<'a> Store<'a> {
    /// The store behind `uri`, reached through `reg` for proxied
    /// artifacts; `whose` names the registry in messages.
    pub fn open(uri: &str, reg: &'a MlflowRegistry, whose: &str) -> Result<Store<'a>> {
        let kind = if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
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

    /// Every file under the root, recursively, sorted by path.
    pub async fn list(&self) -> Result<Vec<CopyFile>> {
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
                        (!rel.is_empty()).then(|| CopyFile {
                            path: rel.to_string(),
                            size: m.size,
                        })
                    })
                    .collect()
            }
            Kind::Local { root } => list_local(root).map_err(|e| self.io_error("", &e))?,
        };
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn list_proxied(&self) -> Result<Vec<CopyFile>> {
        let Kind::Proxied { reg, root } = &self.kind else {
            unreachable!("proxied");
        };
        let mut out = Vec::new();
        let mut dirs = vec![String::new()];
        while let Some(dir) = dirs.pop() {
            let path = join(root, &dir);
            let resp = reg
                .client
                .raw(Method::GET, "api/2.0/mlflow-artifacts/artifacts", true)
                .query(&[("path", path.as_str())])
                .send()
                .await
                .map_err(|e| self.transport(&dir, &e))?;
            let resp = self.check(resp, &dir, "list").await?;
            let page: ArtifactPage = resp.json().await.map_err(|e| self.transport(&dir, &e))?;
            for f in page.files {
                let name = f.path.rsplit('/').next().unwrap_or(&f.path).to_string();
                let rel = join(&dir, &name);
                if f.is_dir {
                    dirs.push(rel);
                } else {
                    out.push(CopyFile {
                        path: rel,
                        size: f.file_size,
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
                    .client
                    .raw(Method::GET, &url, true)
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
                    .client
                    .raw(Method::PUT, &url, false)
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
        let detail = super::errors::error_chain(e);
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

fn list_local(root: &std::path::Path) -> std::io::Result<Vec<CopyFile>> {
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            let meta = entry.metadata()?;
            if meta.is_dir() {
                dirs.push(path);
            } else {
                out.push(CopyFile {
                    path: path.to_string_lossy().into_owned(),
                    size: meta.len(),
                });
            }
        }
    }
    Ok(out)
}

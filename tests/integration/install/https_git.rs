//! `watch --git https://…` with the binary as it is shipped: libgit2 with
//! HTTPS over the statically linked OpenSSL (no libssl on the machine that
//! runs it). A smart-HTTP git server (`git http-backend` behind Python's
//! HTTPS server, certificate from the harness's private CA) serves a
//! manifest: with the CA trusted (`SSL_CERT_FILE`) `watch --once` applies
//! it; with only the system's CAs the fetch fails and nothing is written —
//! TLS verification stays on.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::cli::Workdir;
use crate::support::git::GitRepo;

/// Serves `git http-backend` (CGI) for every request, over TLS.
const SERVER: &str = r#"
import http.server, os, ssl, subprocess, sys
root, cert, key = sys.argv[1:4]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.backend()

    def do_POST(self):
        self.backend()

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def backend(self):
        path, _, query = self.path.partition("?")
        body = self.body()
        env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1",
                   PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD=self.command,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(body)), REMOTE_ADDR="127.0.0.1",
                   GIT_PROTOCOL=self.headers.get("Git-Protocol", ""))
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run(["git", "http-backend"], input=body, env=env,
                             stdout=subprocess.PIPE, check=False).stdout
        sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
        head, _, payload = out.partition(sep)
        status, headers = 200, []
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(cert, key)
server.socket = tls.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// The git server, stopped when dropped.
struct HttpsGit {
    child: Child,
    port: u16,
}

impl HttpsGit {
    fn start(root: &Path, cert: &Path, key: &Path) -> HttpsGit {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SERVER)
            .arg(root)
            .arg(cert)
            .arg(key)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the HTTPS git server");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("port {line:?}: {e}"));
        HttpsGit { child, port }
    }
}

impl Drop for HttpsGit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MANIFEST: &str = "\
apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: over-https
spec:
  versions:
    a: {source: \"s3://bucket/over-https/a\"}
  aliases: {champion: a}
";

#[test]
fn watch_fetches_a_git_remote_over_https_and_verifies_its_certificate() {
    let w = Workdir::new();
    let (ca, cert, key) =
        crate::support::servers::make_certificates(&w.path().join("tls")).expect("a private CA");
    let served = w.path().join("served");
    let repo = GitRepo::named(&served, "acme/models.git");
    let commit = repo.push("manifests/model.yaml", MANIFEST);
    let server = HttpsGit::start(&served, &cert, &key);
    let url = format!("https://127.0.0.1:{}/acme/models.git", server.port);
    let watch = |cache: &str| {
        let mut cmd = w.command(&["watch", "--once", "--git", &url, "--branch", "main"]);
        cmd.args(["--path", "manifests", "--cache-dir"])
            .arg(w.path().join(cache))
            .env_remove("SSL_CERT_DIR");
        cmd
    };

    // Only the system's CAs: the private CA's certificate is refused.
    let untrusted = crate::support::cli::Run::from_command(
        watch("cache-untrusted").env_remove("SSL_CERT_FILE"),
    );
    assert_ne!(untrusted.code, 0, "{untrusted:?}");
    assert!(
        untrusted.stderr.to_lowercase().contains("certificate"),
        "the error names the certificate: {untrusted:?}"
    );
    assert!(
        !w.registry_file().exists(),
        "nothing written: {untrusted:?}"
    );

    // The private CA trusted: fetched over HTTPS and applied.
    let trusted = crate::support::cli::Run::from_command(watch("cache").env("SSL_CERT_FILE", &ca));
    assert_eq!(trusted.code, 0, "{trusted:?}");
    let got = w.run(&[
        "get",
        "over-https",
        "--alias",
        "champion",
        "--format",
        "json",
    ]);
    assert_eq!(got.code, 0, "{got:?}");
    let v: serde_json::Value = serde_json::from_str(&got.stdout).expect("json");
    assert!(
        v["tags"]["modelsync.promoted-at.champion"]
            .as_str()
            .is_some_and(|t| t.ends_with(&format!(" revision={commit}"))),
        "applied from the fetched commit: {v:#}"
    );
}

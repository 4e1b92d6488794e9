//! Runs `modelsync watch` as a child process and talks to its HTTP
//! endpoints (a tiny HTTP/1.1 client over std, so tests stay synchronous).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running daemon; killed on drop if still running.
pub struct Daemon {
    child: Child,
    pub addr: String,
    logs: Arc<Mutex<Vec<String>>>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Daemon {
    /// Starts `cmd` (a `modelsync watch ...` command without `--listen`) on
    /// a free loopback port and waits until it serves HTTP.
    pub fn start(cmd: Command) -> Daemon {
        Daemon::start_at(cmd, "127.0.0.1:0")
    }

    /// [`Daemon::start`] listening on `addr` (a port known beforehand, for
    /// a webhook URL registered at start-up).
    pub fn start_at(mut cmd: Command, addr: &str) -> Daemon {
        cmd.args(["--listen", addr, "--log-format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start modelsync watch");
        let stderr = child.stderr.take().expect("stderr piped");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("log lock").push(line);
            }
        });
        let mut daemon = Daemon {
            child,
            addr: String::new(),
            logs,
        };
        let addr = daemon.wait_log("watch started", Duration::from_secs(120));
        let v: serde_json::Value = serde_json::from_str(&addr).expect("json log line");
        daemon.addr = v["listen"].as_str().expect("listen field").to_string();
        daemon
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stderr line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("log lock").clone()
    }

    /// Waits for a log line containing `needle`; returns it.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.logs().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "daemon exited ({status}) before logging {needle:?}:\n{}",
                    self.logs().join("\n")
                );
            }
            assert!(
                start.elapsed() < timeout,
                "no log line with {needle:?} after {timeout:?}:\n{}",
                self.logs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.request("POST", path, headers, body)
    }

    /// `GET /status` as JSON.
    pub fn status(&self) -> serde_json::Value {
        let r = self.get("/status");
        assert_eq!(r.status, 200, "{r:?}");
        serde_json::from_str(&r.body).expect("status JSON")
    }

    /// The sum of `modelsync_reconciles_total` over all outcomes, or of one.
    pub fn reconciles(&self, outcome: Option<&str>) -> u64 {
        let text = self.get("/metrics").body;
        text.lines()
            .filter(|l| l.starts_with("modelsync_reconciles_total{"))
            .filter(|l| outcome.is_none_or(|o| l.contains(&format!("outcome=\"{o}\""))))
            .map(|l| {
                l.rsplit_once(' ')
                    .expect("sample")
                    .1
                    .parse::<u64>()
                    .expect("count")
            })
            .sum()
    }

    /// Polls `/status` until `pred` holds; returns that status.
    pub fn wait_status(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let s = self.status();
            if pred(&s) {
                return s;
            }
            if let Ok(Some(code)) = self.child.try_wait() {
                panic!("daemon exited ({code}) waiting for {what}");
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; status: {s:#}\nlogs:\n{}",
                self.logs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> i32 {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < timeout,
                "daemon still running {timeout:?} after SIGTERM:\n{}",
                self.logs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `POST path` with a body of `size` bytes, written beside the read of
    /// the answer (a server may answer before it read the body, and close):
    /// the status code.
    pub fn post_sized(&self, path: &str, size: usize) -> u16 {
        let mut s = TcpStream::connect(&self.addr).expect("connect to the daemon");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut writer = s.try_clone().expect("clone the stream");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n",
            self.addr
        );
        let send = std::thread::spawn(move || {
            let _ = writer.write_all(head.as_bytes());
            let _ = writer.write_all(&vec![b' '; size]);
        });
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        // Until the end or a reset: what arrived before a reset is kept.
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        let _ = send.join();
        let text = String::from_utf8_lossy(&raw);
        text.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"))
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut s = TcpStream::connect(&self.addr).expect("connect to the daemon");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).expect("send");
        s.write_all(body).expect("send body");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read response");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status code");
        Response {
            status,
            body: body.to_string(),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The HTTP requests of `verify:` checks: the shell half of a check, the
//! only code that sends one (`plan::verify` judges the answers).
//!
//! The URL comes from a manifest, so it is treated as a manifest author's:
//! only `http`/`https` (checked when validated, again here), no
//! credentials of modelsync's ever sent (its own client, no registry auth,
//! no cookies), no redirects followed (a redirect is an answer with its
//! status), no proxy from the environment, TLS verified, a deadline for
//! the whole exchange, and the body — untrusted — read up to [`MAX_BODY`]
//! bytes and no further.

use std::collections::BTreeMap;
use std::time::Duration;

/// The most of an answer's body that is read (and that a condition sees).
pub const MAX_BODY: usize = 256 * 1024;
/// How long one request may take, start to end of the body.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// One request of an HTTP check.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub url: &'a str,
    pub method: &'a str,
    pub body: Option<&'a str>,
    pub headers: &'a [(String, String)],
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case -> value (the last of a repeated name).
    pub headers: BTreeMap<String, String>,
    /// At most [`MAX_BODY`] bytes of it.
    pub body: Vec<u8>,
}

impl Answer {
    /// The answer as a condition sees it.
    pub fn view(&self) -> crate::condition::Answer<'_> {
        crate::condition::Answer {
            status: self.status,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// Sends HTTP checks' requests; one per verification runner.
#[derive(Debug, Clone)]
pub struct Prober {
    client: reqwest::Client,
}

impl Prober {
    pub fn new() -> Result<Prober, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .timeout(TIMEOUT)
            .user_agent(concat!("modelsync-verify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Prober { client })
    }

    /// Sends `req`; an answer of any status is `Ok`, only a failure to get
    /// one is `Err` (why, in one line).
    pub async fn send(&self, req: Request<'_>) -> Result<Answer, String> {
        let url = reqwest::Url::parse(req.url).map_err(|e| format!("invalid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{} URLs are not checked", url.scheme()));
        }
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| format!("invalid method {:?}", req.method))?;
        let mut builder = self.client.request(method, url);
        let typed = req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (k, v) in req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if let Some(body) = req.body {
            if !typed {
                builder = builder.header("content-type", "application/json");
            }
            builder = builder.body(body.to_string());
        }
        let mut response = builder.send().await.map_err(|e| one_line(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_ascii_lowercase(), value)
            })
            .collect();
        let mut body = Vec::new();
        while body.len() < MAX_BODY {
            match response.chunk().await.map_err(|e| one_line(&e))? {
                Some(chunk) => {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                None => break,
            }
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// A reqwest error and its causes on one line.
fn one_line(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot server answering `answer` to the first request, and what
    /// it received.
    async fn serve_once(answer: Vec<u8>) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap();
            let _ = sock.write_all(&answer).await;
            let _ = sock.shutdown().await;
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (url, task)
    }

    #[tokio::test]
    async fn a_redirect_is_an_answer_and_no_credentials_are_sent() {
        let (url, seen) = serve_once(
            b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        )
        .await;
        let answer = Prober::new()
            .unwrap()
            .send(Request {
                url: &format!("{url}/invocations"),
                method: "POST",
                body: Some("{}"),
                headers: &[],
            })
            .await
            .unwrap();
        assert_eq!(answer.status, 302, "not followed");
        let request = seen.await.unwrap().to_ascii_lowercase();
        assert!(request.starts_with("post /invocations"), "{request}");
        assert!(
            request.contains("content-type: application/json"),
            "{request}"
        );
        assert!(!request.contains("authorization"), "{request}");
    }

    #[tokio::test]
    async fn a_huge_body_is_read_only_up_to_the_cap() {
        let mut answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        answer.extend(std::iter::repeat_n(b'x', MAX_BODY * 4));
        let (url, _) = serve_once(answer).await;
        let got = Prober::new()
            .unwrap()
            .send(Request {
                url: &url,
                method: "GET",
                body: None,
                headers: &[],
            })
            .await
            .unwrap();
        assert_eq!(got.body.len(), MAX_BODY);
        assert_eq!(got.headers["content-type"], "text/plain");
        let prober = Prober::new().unwrap();
        let refused = prober.send(Request {
            url: "file:///etc/passwd",
            method: "GET",
            body: None,
            headers: &[],
        });
        assert_eq!(refused.await, Err("file URLs are not checked".into()));
    }
}

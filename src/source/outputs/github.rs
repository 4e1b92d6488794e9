//! The GitHub REST calls of pull-request outputs: find the open pull
//! request from modelsync's branch into the output's branch, open one, or
//! update it. The API is `GITHUB_API_URL` (default
//! `https://api.github.com`), the token `GITHUB_TOKEN` (never shown); the
//! owner and repository are the last two segments of the output's URL.

use serde::Deserialize;
use serde_json::json;

use crate::secret::Secret;

/// A pull request as GitHub answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct Pull {
    pub number: u64,
    #[serde(default)]
    pub html_url: String,
}

/// One repository's pull requests.
pub struct GitHub {
    api: String,
    token: Secret,
    owner: String,
    repo: String,
    http: reqwest::Client,
}

impl GitHub {
    /// The repository `url` names, through the API the environment names.
    pub fn for_repo(url: &str) -> Result<GitHub, String> {
        let token = Secret::from_env("GITHUB_TOKEN").ok_or(
            "pull-request mode needs GITHUB_TOKEN (a token that may push and open pull requests)",
        )?;
        let api = std::env::var("GITHUB_API_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "https://api.github.com".into());
        let (owner, repo) = owner_repo(url).ok_or_else(|| {
            format!(
                "{}: cannot tell the owner and repository from the URL",
                crate::uri::without_userinfo(url)
            )
        })?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(GitHub {
            api: api.trim_end_matches('/').to_string(),
            token,
            owner,
            repo,
            http,
        })
    }

    /// The open pull request from `head` (a branch of this repository)
    /// into `base`, if there is one.
    pub async fn find_open(&self, head: &str, base: &str) -> Result<Option<Pull>, String> {
        let url = format!("{}/repos/{}/{}/pulls", self.api, self.owner, self.repo);
        let head = format!("{}:{head}", self.owner);
        let query = [("state", "open"), ("head", head.as_str()), ("base", base)];
        let pulls: Vec<Pull> = self.send(self.http.get(&url).query(&query)).await?;
        Ok(pulls.into_iter().next())
    }

    /// Opens a pull request from `head` into `base`.
    pub async fn open(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<Pull, String> {
        let url = format!("{}/repos/{}/{}/pulls", self.api, self.owner, self.repo);
        let doc = json!({"title": title, "head": head, "base": base, "body": body});
        self.send(self.http.post(&url).json(&doc)).await
    }

    /// Sets the title and body of pull request `number`.
    pub async fn update(&self, number: u64, title: &str, body: &str) -> Result<Pull, String> {
        let url = format!(
            "{}/repos/{}/{}/pulls/{number}",
            self.api, self.owner, self.repo
        );
        let doc = json!({"title": title, "body": body});
        self.send(self.http.patch(&url).json(&doc)).await
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, String> {
        let req = req
            .bearer_auth(self.token.expose())
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header(
                "User-Agent",
                concat!("modelsync/", env!("CARGO_PKG_VERSION")),
            );
        let shown = crate::uri::scheme_and_host(&self.api);
        let resp = req
            .send()
            .await
            .map_err(|e| format!("GitHub API {shown}: {}", without_url(&e)))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let excerpt: String = body.chars().take(300).collect();
            return Err(format!("GitHub API {shown} answered {status}: {excerpt}"));
        }
        serde_json::from_str(&body)
            .map_err(|e| format!("GitHub API {shown}: unexpected answer: {e}"))
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "");
    }
    s
}

/// `(owner, repo)`: the last two path segments of a git URL, `.git` cut.
pub fn owner_repo(url: &str) -> Option<(String, String)> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    // After the host (empty for file:///…).
    let (_, path) = rest.split_once('/')?;
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let repo = parts.next()?.trim_end_matches(".git");
    let owner = parts.next()?;
    (!repo.is_empty() && !owner.is_empty() && !owner.contains(['@', ':']))
        .then(|| (owner.to_string(), repo.to_string()))
}

#[cfg(test)]
mod tests {
    use super::owner_repo;

    #[test]
    fn owner_and_repository_come_from_the_url() {
        let pair = |o: &str, r: &str| Some((o.to_string(), r.to_string()));
        assert_eq!(
            owner_repo("https://github.com/acme/serving.git"),
            pair("acme", "serving")
        );
        assert_eq!(
            owner_repo("https://github.com/acme/serving/"),
            pair("acme", "serving")
        );
        assert_eq!(
            owner_repo("file:///tmp/x/acme/serving.git"),
            pair("acme", "serving")
        );
        assert_eq!(owner_repo("https://github.com/serving.git"), None);
    }
}

//! Which git URLs this build can reach: libgit2 is compiled with HTTPS
//! (and plain git and local transports) but without SSH. The daemon's
//! `--git` and an output's `repo` are both checked here, before anything
//! is fetched or pushed; its own file, so `config/` needs nothing of
//! `git.rs` (which needs `config.rs`).

/// Why this build cannot fetch `url`, if it cannot: libgit2 is compiled
/// with HTTPS (and plain git and local transports) but without SSH, so an
/// `ssh://` or scp-like (`git@host:org/repo.git`) URL is refused before
/// anything is fetched, naming the way that works.
pub fn unsupported_transport(url: &str) -> Option<String> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let ssh = match scheme.as_deref() {
        Some(s) => matches!(s, "ssh" | "git+ssh" | "ssh+git"),
        // scp-like syntax: `[user@]host:path`, a colon before any slash.
        None => url
            .split_once(':')
            .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/') && host.len() > 1),
    };
    ssh.then(|| {
        format!(
            "--git {}: this build of modelsync fetches over https:// (credentials from MODELSYNC_GIT_TOKEN), git:// and file:// only; SSH is not compiled in: use the repository's https:// URL",
            crate::uri::without_userinfo(url)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls_are_refused_with_the_https_way_and_others_are_not() {
        for url in [
            "ssh://git@github.com/acme/models.git",
            "git+ssh://github.com/acme/models.git",
            "git@github.com:acme/models.git",
            "github.com:acme/models.git",
        ] {
            let why = unsupported_transport(url).unwrap_or_else(|| panic!("{url} accepted"));
            assert!(why.contains("https://") && why.contains("SSH"), "{why}");
        }
        let why = unsupported_transport("ssh://user:hunter2@example.com/x.git").expect("refused");
        assert!(!why.contains("hunter2"), "{why}");
        for url in [
            "https://github.com/acme/models.git",
            "http://127.0.0.1:8080/models.git",
            "git://example.com/models.git",
            "file:///srv/git/models.git",
            "/srv/git/models.git",
            "relative/models",
        ] {
            assert_eq!(unsupported_transport(url), None, "{url}");
        }
    }
}

//! The pieces of a URL modelsync reads itself, once: the userinfo of its
//! authority, percent-escapes, and the forms a URL is shown in (logs,
//! `/status`, errors) — without its userinfo, or only its scheme and host.
//! Not a full URL parser (the HTTP clients parse what they send); pure but
//! for [`register_password`], which tells the leak check about a password
//! a URL carries.

/// A URL cut at its authority: `scheme://[userinfo@]host[/rest]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    pub scheme: &'a str,
    /// What precedes the authority's last `@` (`user:password`), if any.
    pub userinfo: Option<&'a str>,
    /// The authority without its userinfo (`host:port`).
    pub host: &'a str,
    /// Everything after the authority: path, query and fragment.
    pub rest: &'a str,
}

/// `url` cut at its authority; `None` without a `scheme://`. An `@` in the
/// path, query or fragment is not userinfo.
pub fn parts(url: &str) -> Option<Parts<'_>> {
    let (scheme, after) = url.split_once("://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    Some(Parts {
        scheme,
        userinfo,
        host,
        rest,
    })
}

/// Whether `url` is an `http://` or `https://` URL with a host: the one
/// test of "an HTTP(S) URL" (registry URIs, `[registries]`, `--notify`).
pub fn is_http(url: &str) -> bool {
    parts(url).is_some_and(|p| matches!(p.scheme, "http" | "https") && !p.host.is_empty())
}

/// `url` without its userinfo (`https://user:token@host/x` ->
/// `https://host/x`); unchanged when it has none (or is no
/// `scheme://` URL).
pub fn without_userinfo(url: &str) -> String {
    match parts(url) {
        Some(p) if p.userinfo.is_some() => format!("{}://{}{}", p.scheme, p.host, p.rest),
        _ => url.to_string(),
    }
}

/// `scheme://host`, and `/…` when more followed: a URL whose path or
/// query holds a secret (a webhook's), as logs show it.
pub fn scheme_and_host(url: &str) -> String {
    match parts(url) {
        Some(p) => {
            let more = if p.rest.is_empty() { "" } else { "/…" };
            format!("{}://{}{more}", p.scheme, p.host)
        }
        None => "<invalid URL>".into(),
    }
}

/// Registers the password of a URL's userinfo (`https://USER:PASSWORD@…`),
/// as written, as the secret `name`.
pub fn register_password(name: &str, url: &str) {
    if let Some(password) = parts(url)
        .and_then(|p| p.userinfo)
        .and_then(|u| u.split_once(':'))
        .map(|(_, p)| p)
    {
        crate::secret::register(name, password);
    }
}

/// `%XX` escapes decoded (a password with `@` or `:` in it, a workspace
/// name); an escape that is not one is kept as written.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = || u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok();
        match (b[i], hex()) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes all but URI's unreserved characters (for a fragment's
/// value).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_http_or_https_with_a_host() {
        for yes in ["http://h", "https://h:5000/x", "https://u:p@h"] {
            assert!(is_http(yes), "{yes}");
        }
        for no in [
            "https://",
            "ftp://h",
            "file:/x",
            "h:5000",
            "httpx://h",
            "slack+https://h",
        ] {
            assert!(!is_http(no), "{no}");
        }
    }

    #[test]
    fn userinfo_is_in_the_authority_only() {
        assert_eq!(
            without_userinfo("https://user:tok@github.com/org/r.git"),
            "https://github.com/org/r.git"
        );
        assert_eq!(without_userinfo("ssh://git@host/r.git"), "ssh://host/r.git");
        assert_eq!(
            without_userinfo("https://u:secret@mlflow:5000/x"),
            "https://mlflow:5000/x"
        );
        assert_eq!(
            without_userinfo("https://host/p@not-userinfo"),
            "https://host/p@not-userinfo"
        );
        assert_eq!(
            without_userinfo("https://u:p%40ss@host?q=a@b"),
            "https://host?q=a@b"
        );
        for unchanged in ["file:///tmp/r", "file:a/b.json", "http://127.0.0.1:5000"] {
            assert_eq!(without_userinfo(unchanged), unchanged);
        }
    }

    #[test]
    fn scheme_and_host_hide_the_rest() {
        assert_eq!(
            scheme_and_host("https://hooks.slack.com/services/T0/B0/s3cr3t"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            scheme_and_host("http://u:p@127.0.0.1:9/x?token=1"),
            "http://127.0.0.1:9/…"
        );
        assert_eq!(
            scheme_and_host("https://example.com"),
            "https://example.com"
        );
        assert_eq!(scheme_and_host("nonsense"), "<invalid URL>");
    }

    #[test]
    fn a_url_password_is_registered_as_written() {
        register_password("TEST_URI", "https://u:uri-pw-5555%40x@host:1/p?q=1");
        assert_eq!(
            crate::secret::check("uri-pw-5555%40x")
                .expect_err("leak")
                .name,
            "TEST_URI"
        );
        register_password("TEST_URI_2", "https://host/p@uri-pw-6666");
        assert!(
            crate::secret::check("uri-pw-6666").is_ok(),
            "an @ in the path is no userinfo"
        );
    }

    #[test]
    fn percent_escapes_round_trip() {
        assert_eq!(percent_decode("team%20b"), "team b");
        assert_eq!(percent_decode("p%40ss%3Aw"), "p@ss:w");
        assert_eq!(percent_decode("100%"), "100%", "not an escape");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_encode("team b/é"), "team%20b%2F%C3%A9");
        assert_eq!(percent_decode(&percent_encode("a b@c")), "a b@c");
    }
}

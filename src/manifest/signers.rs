//! git's `allowed_signers` format (`man ssh-keygen`, "ALLOWED SIGNERS"):
//! who may sign, with which SSH public key, in which namespaces — the
//! approvers file `modelsync.toml` names (`approvers = "PATH"`) and the
//! file `watch --allowed-signers` reads. And the check `ssh-keygen -Y
//! verify -f FILE -I PRINCIPAL -n NAMESPACE` makes, in process (`ssh-key`'s
//! SSHSIG): the armoured signature verifies over the message in the
//! namespace, with a key the file lists (for the principal, when one is
//! named), whose `namespaces="…"` option (if any) allows the namespace.
//!
//! A line is `principals [options] keytype base64 [comment]`; principals
//! are comma-separated patterns (`*` and `?` wildcards, `!` negates), as
//! OpenSSH matches them. Not supported (an error naming the line, never
//! silently ignored): `cert-authority` entries and the
//! `valid-after`/`valid-before` options. Pure: text in, answers out.

use std::fmt;

use ssh_key::{HashAlg, PublicKey, SshSig};

/// The keys an allowed_signers file lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedSigners {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// As written (quotes kept), for messages.
    principals: String,
    /// The comma-separated patterns, unquoted.
    patterns: Vec<String>,
    namespaces: Option<Vec<String>>,
    key: PublicKey,
}

/// A signature that verified: the principals of the entry that allowed
/// it, and the key's SHA-256 fingerprint (`SHA256:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub principals: String,
    pub fingerprint: String,
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not an armoured SSH signature (`-----BEGIN SSH SIGNATURE-----`).
    NotSsh(String),
    /// Signed by a key the file does not list (never, or no longer).
    UnknownKey { fingerprint: String },
    /// The key is listed, but only for other namespaces.
    Namespace {
        fingerprint: String,
        namespace: String,
    },
    /// The key is listed, but not for this principal.
    Principal {
        fingerprint: String,
        principal: String,
        principals: String,
    },
    /// The signature does not verify over the message in the namespace
    /// (the message was altered, or signed for another namespace).
    BadSignature { fingerprint: String },
}

impl Refusal {
    /// The signing key's fingerprint, when the signature could be read.
    pub fn fingerprint(&self) -> Option<&str> {
        match self {
            Refusal::NotSsh(_) => None,
            Refusal::UnknownKey { fingerprint }
            | Refusal::Namespace { fingerprint, .. }
            | Refusal::Principal { fingerprint, .. }
            | Refusal::BadSignature { fingerprint } => Some(fingerprint),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotSsh(why) => {
                write!(
                    f,
                    "not an SSH signature (only SSH signatures are verified): {why}"
                )
            }
            Refusal::UnknownKey { fingerprint } => write!(
                f,
                "signed by a key that is not in the allowed signers (key {fingerprint})"
            ),
            Refusal::Namespace {
                fingerprint,
                namespace,
            } => write!(
                f,
                "the signer's key is not allowed for the {namespace} namespace (key {fingerprint})"
            ),
            Refusal::Principal {
                fingerprint,
                principal,
                principals,
            } => write!(
                f,
                "the key is listed for {principals}, not for {principal} (key {fingerprint})"
            ),
            Refusal::BadSignature { fingerprint } => write!(
                f,
                "the signature does not verify (the signed text was altered, or signed for another namespace) (key {fingerprint})"
            ),
        }
    }
}

impl AllowedSigners {
    /// Parses allowed_signers text (`file` names it in errors); every bad
    /// line is reported as `file:line: message`, all at once.
    pub fn parse(file: &str, text: &str) -> Result<AllowedSigners, String> {
        AllowedSigners::parse_lines(text).map_err(|errors| {
            errors
                .iter()
                .map(|(line, e)| match line {
                    0 => format!("{file}: {e}"),
                    n => format!("{file}:{n}: {e}"),
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// Parses allowed_signers text: every bad line as (1-based line, why);
    /// line 0 when the file as a whole is wrong (it lists nobody).
    pub fn parse_lines(text: &str) -> Result<AllowedSigners, Vec<(usize, String)>> {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok(e) => entries.push(e),
                Err(e) => errors.push((i + 1, e)),
            }
        }
        if errors.is_empty() && entries.is_empty() {
            errors.push((0, "no signers listed".to_string()));
        }
        if errors.is_empty() {
            Ok(AllowedSigners { entries })
        } else {
            Err(errors)
        }
    }

    /// True when some entry's patterns name `principal`.
    pub fn lists(&self, principal: &str) -> bool {
        self.entries
            .iter()
            .any(|e| matches_list(principal, &e.patterns))
    }

    /// The principals listed for `key` (as written), in file order.
    pub fn principals_of(&self, key: &PublicKey) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.key.key_data() == key.key_data())
            .map(|e| e.principals.trim_matches('"').to_string())
            .collect()
    }

    /// Verifies the armoured SSH signature `armored` over `message` in
    /// `namespace`, as `ssh-keygen -Y verify` does: by a listed key, allowed
    /// for the namespace and (when given) for `principal`.
    pub fn verify(
        &self,
        namespace: &str,
        principal: Option<&str>,
        message: &[u8],
        armored: &str,
    ) -> Result<Verified, Refusal> {
        let sig = SshSig::from_pem(armored.trim()).map_err(|e| Refusal::NotSsh(e.to_string()))?;
        let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
        let keyed: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.key.key_data() == sig.public_key())
            .collect();
        if keyed.is_empty() {
            return Err(Refusal::UnknownKey { fingerprint });
        }
        let spaced: Vec<&Entry> = keyed
            .iter()
            .copied()
            .filter(|e| {
                e.namespaces
                    .as_ref()
                    .is_none_or(|ns| ns.iter().any(|n| n == namespace))
            })
            .collect();
        if spaced.is_empty() {
            let namespace = namespace.to_string();
            return Err(Refusal::Namespace {
                fingerprint,
                namespace,
            });
        }
        let entry = match principal {
            None => spaced[0],
            Some(p) => match spaced.iter().find(|e| matches_list(p, &e.patterns)) {
                Some(e) => e,
                None => {
                    return Err(Refusal::Principal {
                        fingerprint,
                        principal: p.to_string(),
                        principals: spaced[0].principals.trim_matches('"').to_string(),
                    });
                }
            },
        };
        entry
            .key
            .verify(namespace, message, &sig)
            .map_err(|_| Refusal::BadSignature {
                fingerprint: fingerprint.clone(),
            })?;
        Ok(Verified {
            principals: entry.principals.trim_matches('"').to_string(),
            fingerprint,
        })
    }
}

/// `principals [options] keytype base64 [comment]`.
fn parse_line(line: &str) -> Result<Entry, String> {
    let tokens = split(line);
    let mut rest = tokens.iter().map(String::as_str);
    let principals = rest.next().ok_or("empty line")?.to_string();
    let mut namespaces = None;
    let key = loop {
        let t = rest.next().ok_or("no public key after the principals")?;
        if is_key_type(t) {
            let b64 = rest.next().ok_or("a key type without its key")?;
            break PublicKey::from_openssh(&format!("{t} {b64}"))
                .map_err(|e| format!("bad public key: {e}"))?;
        }
        for opt in split_options(t) {
            let (name, value) = opt.split_once('=').unwrap_or((opt.as_str(), ""));
            match name.to_ascii_lowercase().as_str() {
                "namespaces" => {
                    namespaces = Some(
                        value
                            .trim_matches('"')
                            .split(',')
                            .map(str::to_string)
                            .collect(),
                    );
                }
                "cert-authority" | "valid-after" | "valid-before" => {
                    return Err(format!("the {name} option is not supported"));
                }
                _ => return Err(format!("unknown option {name:?}")),
            }
        }
    };
    let patterns = principals
        .trim_matches('"')
        .split(',')
        .map(str::to_string)
        .filter(|p| !p.is_empty())
        .collect();
    Ok(Entry {
        principals,
        patterns,
        namespaces,
        key,
    })
}

fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-sha2-") || t.starts_with("sk-")
}

/// OpenSSH's `match_pattern_list`: a negated pattern that matches refuses
/// at once; otherwise any positive match accepts.
fn matches_list(name: &str, patterns: &[String]) -> bool {
    let mut found = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(neg) if glob(neg.as_bytes(), name.as_bytes()) => return false,
            Some(_) => {}
            None if glob(p.as_bytes(), name.as_bytes()) => found = true,
            None => {}
        }
    }
    found
}

/// `*` (any run) and `?` (any one character) wildcards, case-sensitive.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], name) || (!name.is_empty() && glob(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// Splits on whitespace outside double quotes.
fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits `a,b="x,y",c` on commas outside double quotes.
fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdl9wS4t4ym/ZEQcvjHAz2ZGCzlRpjS3aUbY9nHDvJs";

    #[test]
    fn parses_entries_and_reports_every_bad_line() {
        let ok = AllowedSigners::parse(
            "s",
            &format!("# team\nalice@example.com {KEY} laptop\n\"bob@x,carol@x\" namespaces=\"git,file\" {KEY}\n"),
        )
        .expect("valid");
        assert_eq!(ok.entries.len(), 2);
        assert_eq!(ok.entries[1].principals, "\"bob@x,carol@x\"");
        assert_eq!(ok.entries[1].patterns, ["bob@x", "carol@x"]);
        assert_eq!(
            ok.entries[1].namespaces.as_deref(),
            Some(&["git".to_string(), "file".to_string()][..])
        );
        let bad = AllowedSigners::parse(
            "s",
            &format!("alice {KEY}\nbob cert-authority {KEY}\ncarol ssh-ed25519 AAAA\ndave\n"),
        )
        .expect_err("bad lines");
        assert_eq!(
            bad,
            "s:2: the cert-authority option is not supported\n\
             s:3: bad public key: Base64 encoding error: invalid Base64 length\n\
             s:4: no public key after the principals",
            "{bad}"
        );
        assert_eq!(
            AllowedSigners::parse("s", "# none\n").unwrap_err(),
            "s: no signers listed"
        );
    }

    #[test]
    fn principals_match_as_openssh_patterns() {
        let list = |s: &str| -> Vec<String> { s.split(',').map(str::to_string).collect() };
        assert!(matches_list("alice", &list("alice")));
        assert!(!matches_list("alicia", &list("alice")));
        assert!(matches_list(
            "alice@example.com",
            &list("bob,*@example.com")
        ));
        assert!(matches_list("al", &list("a?")));
        assert!(!matches_list(
            "mallory@example.com",
            &list("*@example.com,!mallory*")
        ));
        assert!(!matches_list("alice", &list("")));
        let s = AllowedSigners::parse("s", &format!("\"alice,*@ml.example\" {KEY}\n")).expect("ok");
        assert!(s.lists("alice") && s.lists("bob@ml.example") && !s.lists("bob"));
    }

    #[test]
    fn garbage_is_not_an_ssh_signature() {
        let s = AllowedSigners::parse("s", &format!("alice {KEY}")).expect("valid");
        let gpg = "-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----";
        let refused = s.verify("git", None, b"x", gpg).unwrap_err();
        assert!(matches!(refused, Refusal::NotSsh(_)), "{refused}");
        assert_eq!(refused.fingerprint(), None);
    }
}

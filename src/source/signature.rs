//! SSH commit signatures, verified in process (`ssh-key`'s sshsig): the
//! signatures `git -c gpg.format=ssh commit -S` writes, checked against
//! git's own `allowed_signers` file (`gpg.ssh.allowedSignersFile`), as
//! `git verify-commit` would with `ssh-keygen -Y verify`: the signing key
//! must be listed, the signature must verify over the commit in the `git`
//! namespace, and an entry restricted with `namespaces="…"` must allow
//! `git`.
//!
//! Not supported (an error naming file:line, not silently ignored):
//! `cert-authority` entries and `valid-after`/`valid-before` options.

use std::fmt;
use std::path::Path;

use ssh_key::{HashAlg, PublicKey, SshSig};

/// The namespace git signs commits in.
const NAMESPACE: &str = "git";

/// The keys allowed to sign commits.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    principals: String,
    namespaces: Option<Vec<String>>,
    key: PublicKey,
}

/// The result of checking one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Signed by a listed key: its principals and fingerprint.
    Verified {
        principals: String,
        fingerprint: String,
    },
    /// No signature at all.
    Unsigned,
    /// A signature that could not be checked or did not verify.
    Refused {
        /// The signing key's fingerprint, when the signature could be read.
        fingerprint: Option<String>,
        reason: String,
    },
}

impl Check {
    /// Who signed: the principals when verified, else the key's
    /// fingerprint, when known.
    pub fn signer(&self) -> Option<String> {
        match self {
            Check::Verified { principals, .. } => Some(principals.clone()),
            Check::Unsigned => None,
            Check::Refused { fingerprint, .. } => fingerprint.clone(),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Verified {
                principals,
                fingerprint,
            } => write!(f, "good signature by {principals} ({fingerprint})"),
            Check::Unsigned => f.write_str("the commit is not signed"),
            Check::Refused {
                fingerprint: Some(fp),
                reason,
            } => write!(f, "{reason} (key {fp})"),
            Check::Refused {
                fingerprint: None,
                reason,
            } => f.write_str(reason),
        }
    }
}

impl AllowedSigners {
    /// Reads an allowed_signers file; every bad line is reported as
    /// `file:line: message`, all at once.
    pub fn load(path: &Path) -> Result<AllowedSigners, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        AllowedSigners::parse(&path.display().to_string(), &text)
    }

    /// Parses allowed_signers text (`file` names it in errors).
    pub fn parse(file: &str, text: &str) -> Result<AllowedSigners, String> {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok(e) => entries.push(e),
                Err(e) => errors.push(format!("{file}:{}: {e}", i + 1)),
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("\n"));
        }
        if entries.is_empty() {
            return Err(format!("{file}: no signers listed"));
        }
        Ok(AllowedSigners { entries })
    }

    /// Checks an armoured SSH signature over `signed_data`.
    pub fn check(&self, signature: Option<&[u8]>, signed_data: &[u8]) -> Check {
        let Some(signature) = signature else {
            return Check::Unsigned;
        };
        let sig = match std::str::from_utf8(signature)
            .map_err(|e| e.to_string())
            .and_then(|s| SshSig::from_pem(s.trim()).map_err(|e| e.to_string()))
        {
            Ok(sig) => sig,
            Err(e) => {
                return Check::Refused {
                    fingerprint: None,
                    reason: format!("not an SSH signature (only SSH signatures are verified): {e}"),
                };
            }
        };
        let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
        let refused = |reason: &str| Check::Refused {
            fingerprint: Some(fingerprint.clone()),
            reason: reason.to_string(),
        };
        let Some(entry) = self
            .entries
            .iter()
            .find(|e| e.key.key_data() == sig.public_key())
        else {
            return refused("signed by a key that is not in the allowed signers");
        };
        if entry
            .namespaces
            .as_ref()
            .is_some_and(|ns| !ns.iter().any(|n| n == NAMESPACE))
        {
            return refused("the signer's key is not allowed for the git namespace");
        }
        match entry.key.verify(NAMESPACE, signed_data, &sig) {
            Ok(()) => Check::Verified {
                principals: entry.principals.clone(),
                fingerprint,
            },
            Err(_) => refused(
                "the signature does not verify (the commit was altered, or signed for another namespace)",
            ),
        }
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
    Ok(Entry {
        principals,
        namespaces,
        key,
    })
}

fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-sha2-") || t.starts_with("sk-")
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
        assert!(AllowedSigners::parse("s", "# none\n").is_err());
    }

    #[test]
    fn unsigned_and_garbage_signatures_are_refused() {
        let s = AllowedSigners::parse("s", &format!("alice {KEY}")).expect("valid");
        assert_eq!(s.check(None, b"x"), Check::Unsigned);
        let gpg = b"-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----";
        assert!(matches!(
            s.check(Some(gpg), b"x"),
            Check::Refused {
                fingerprint: None,
                ..
            }
        ));
    }
}

//! SSH commit signatures, verified in process: the signatures `git -c
//! gpg.format=ssh commit -S` writes, checked against git's own
//! `allowed_signers` file (`gpg.ssh.allowedSignersFile`), as `git
//! verify-commit` would with `ssh-keygen -Y verify`: the signing key must
//! be listed, the signature must verify over the commit in the `git`
//! namespace, and an entry restricted with `namespaces="…"` must allow
//! `git`. The file's format and the check itself are
//! [`crate::manifest::signers`] (the approvers file uses them too); this
//! module reads the file from the host and words the result for a commit.

use std::fmt;
use std::path::Path;

pub use crate::manifest::signers::AllowedSigners;

/// The namespace git signs commits in.
const NAMESPACE: &str = "git";

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
            Check::Refused { reason, .. } => f.write_str(reason),
        }
    }
}

/// Reads an allowed_signers file from the host (`--allowed-signers`);
/// every bad line is reported as `file:line: message`, all at once.
pub fn load(path: &Path) -> Result<AllowedSigners, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    AllowedSigners::parse(&path.display().to_string(), &text)
}

/// Checks a commit's armoured SSH signature over its `signed_data`.
pub fn check(signers: &AllowedSigners, signature: Option<&[u8]>, signed_data: &[u8]) -> Check {
    let Some(signature) = signature else {
        return Check::Unsigned;
    };
    let armored = match std::str::from_utf8(signature) {
        Ok(s) => s,
        Err(e) => {
            return Check::Refused {
                fingerprint: None,
                reason: format!("not an SSH signature (only SSH signatures are verified): {e}"),
            };
        }
    };
    match signers.verify(NAMESPACE, None, signed_data, armored) {
        Ok(v) => Check::Verified {
            principals: v.principals,
            fingerprint: v.fingerprint,
        },
        Err(refusal) => Check::Refused {
            fingerprint: refusal.fingerprint().map(str::to_string),
            reason: refusal.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdl9wS4t4ym/ZEQcvjHAz2ZGCzlRpjS3aUbY9nHDvJs";

    #[test]
    fn unsigned_and_garbage_signatures_are_refused() {
        let s = AllowedSigners::parse("s", &format!("alice {KEY}")).expect("valid");
        assert_eq!(check(&s, None, b"x"), Check::Unsigned);
        let gpg = b"-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----";
        assert!(matches!(
            check(&s, Some(gpg), b"x"),
            Check::Refused {
                fingerprint: None,
                ..
            }
        ));
    }
}

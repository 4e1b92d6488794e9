//! The desired state of `kind: AccessPolicy` documents: per registered
//! model (a name or a glob), who gets which permission, and whether only
//! modelsync's own principal may move it (`protect`). Validated by
//! `validate/access.rs`; planned by `plan::access`.

use std::collections::BTreeMap;

use super::Origin;
use crate::state::access::{Level, Principal};

/// One `AccessPolicy` document.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPolicy {
    /// `metadata.name`.
    pub name: String,
    /// Where `metadata.name` was written.
    pub origin: Origin,
    /// `spec.models`, in the order written.
    pub models: Vec<DesiredModelAccess>,
}

/// One entry of a policy's `spec.models`.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredModelAccess {
    /// A model name, or a glob over names (`*`: any characters, `?`: one).
    pub pattern: String,
    /// Where `name` was written.
    pub origin: Origin,
    /// Only modelsync's own principal may move the model's stages and
    /// aliases.
    pub protect: bool,
    /// Principal -> the permission it gets.
    pub grants: BTreeMap<Principal, DesiredGrant>,
}

/// A declared grant.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredGrant {
    pub level: Level,
    /// Where the grant was written.
    pub origin: Origin,
}

impl DesiredModelAccess {
    /// True when the pattern holds a wildcard.
    pub fn is_glob(&self) -> bool {
        is_glob(&self.pattern)
    }

    /// True when `name` is this entry's model (or one its glob matches).
    pub fn matches(&self, name: &str) -> bool {
        glob_match(&self.pattern, name)
    }
}

/// True when `pattern` holds `*` or `?`.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// `*` matches any characters (also none), `?` exactly one; everything
/// else itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point (the last `*`).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_written() {
        assert!(glob_match("fraud-detector", "fraud-detector"));
        assert!(!glob_match("fraud-detector", "fraud-detector-2"));
        assert!(glob_match("fraud-*", "fraud-detector"));
        assert!(glob_match("fraud-*", "fraud-"));
        assert!(!glob_match("fraud-*", "churn"));
        assert!(glob_match("*-v?", "model-v2"));
        assert!(!glob_match("*-v?", "model-v10"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(is_glob("fraud-*") && !is_glob("fraud"));
    }
}

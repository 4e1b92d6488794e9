//! `--leader-election URI`: which engine, where, and as whom (pure).
//!
//! - `etcd://HOST:PORT[,HOST:PORT...]`: an etcd cluster's client endpoints
//!   (plain gRPC; etcd's own TLS and authentication are not supported, so
//!   `etcd://USER:PASSWORD@…` is refused, without echoing it).
//! - `postgresql://USER[:PASSWORD]@HOST:PORT/DB` (also `postgres://`): one
//!   PostgreSQL database; the password may instead come from `PGPASSWORD`.
//!
//! The password is kept in a [`Secret`] (registered for the leak check) and
//! never shown: [`Backend`]'s `Display` and `Debug` leave it out, and no
//! error echoes the part of a URI before its `@`.

use std::fmt;

use crate::secret::Secret;
use crate::uri::percent_decode;

/// What a password in `--leader-election` is called in leak errors.
const URI_PASSWORD: &str = "the password in --leader-election";

/// The election engine and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// etcd's client endpoints, `http://HOST:PORT` each.
    Etcd { endpoints: Vec<String> },
    /// A PostgreSQL database.
    Postgres {
        user: String,
        password: Option<Secret>,
        host: String,
        port: u16,
        dbname: String,
    },
}

impl fmt::Display for Backend {
    /// The URI without the password (for logs and `/status`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Etcd { endpoints } => {
                let hosts: Vec<&str> = endpoints
                    .iter()
                    .map(|e| e.trim_start_matches("http://"))
                    .collect();
                write!(f, "etcd://{}", hosts.join(","))
            }
            Backend::Postgres {
                user,
                host,
                port,
                dbname,
                ..
            } => write!(f, "postgresql://{user}@{host}:{port}/{dbname}"),
        }
    }
}

/// Parses `--leader-election`; `pgpassword` is `PGPASSWORD` (used when the
/// URI carries no password). Errors say what is wrong without echoing a
/// password.
pub fn parse(uri: &str, pgpassword: Option<String>) -> Result<Backend, String> {
    if let Some(rest) = uri.strip_prefix("etcd://") {
        return parse_etcd(rest);
    }
    let rest = uri
        .strip_prefix("postgresql://")
        .or_else(|| uri.strip_prefix("postgres://"))
        .ok_or_else(|| {
            "--leader-election: expected etcd://HOST:PORT[,HOST:PORT...] or \
             postgresql://USER[:PASSWORD]@HOST:PORT/DB"
                .to_string()
        })?;
    parse_postgres(rest, pgpassword)
}

fn parse_etcd(rest: &str) -> Result<Backend, String> {
    if rest.contains('@') {
        return Err(
            "--leader-election etcd://: credentials in the URI are not supported \
             (etcd authentication is not supported; use etcd://HOST:PORT[,HOST:PORT...] \
             on a network only the replicas reach)"
                .into(),
        );
    }
    let rest = rest.trim_end_matches('/');
    let mut endpoints = Vec::new();
    for hp in rest.split(',') {
        let (host, port) = host_port(hp).map_err(|e| format!("--leader-election etcd://: {e}"))?;
        endpoints.push(format!("http://{host}:{port}"));
    }
    Ok(Backend::Etcd { endpoints })
}

fn parse_postgres(rest: &str, pgpassword: Option<String>) -> Result<Backend, String> {
    let bad = |why: &str| format!("--leader-election postgresql://: {why}");
    let (auth, tail) = rest
        .rsplit_once('@')
        .ok_or_else(|| bad("expected USER[:PASSWORD]@HOST:PORT/DB"))?;
    let (user, password) = match auth.split_once(':') {
        Some((u, p)) => (u, Some((URI_PASSWORD, p.to_string()))),
        None => (auth, None),
    };
    if user.is_empty() {
        return Err(bad("no user"));
    }
    let (hp, dbname) = tail
        .split_once('/')
        .ok_or_else(|| bad("expected HOST:PORT/DB (no database)"))?;
    let dbname = dbname.split('?').next().unwrap_or_default();
    if dbname.is_empty() {
        return Err(bad("no database"));
    }
    let (host, port) = host_port(hp).map_err(|e| bad(&e))?;
    let password = password
        .or(pgpassword.map(|p| ("PGPASSWORD", p)))
        .filter(|(_, p)| !p.is_empty())
        .map(|(name, p)| {
            crate::secret::register(name, &p);
            Secret::named(name, percent_decode(&p))
        });
    Ok(Backend::Postgres {
        user: percent_decode(user),
        password,
        host,
        port,
        dbname: percent_decode(dbname),
    })
}

fn host_port(hp: &str) -> Result<(String, u16), String> {
    let (host, port) = hp
        .rsplit_once(':')
        .ok_or_else(|| format!("{hp:?}: expected HOST:PORT"))?;
    if host.is_empty() {
        return Err(format!("{hp:?}: no host"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{hp:?}: the port must be a number"))?;
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_etcd_endpoints() {
        let b = parse("etcd://10.0.0.1:2379,etcd-2:2379", None).unwrap();
        assert_eq!(
            b,
            Backend::Etcd {
                endpoints: vec!["http://10.0.0.1:2379".into(), "http://etcd-2:2379".into()]
            }
        );
        assert_eq!(b.to_string(), "etcd://10.0.0.1:2379,etcd-2:2379");
        assert!(
            parse("etcd://host", None)
                .unwrap_err()
                .contains("HOST:PORT")
        );
        assert!(parse("etcd://h:x", None).unwrap_err().contains("number"));
    }

    #[test]
    fn parses_postgres_and_never_shows_the_password() {
        let b = parse("postgresql://ms:p%40ss@db:5432/election", None).unwrap();
        let Backend::Postgres {
            user,
            password,
            host,
            port,
            dbname,
        } = &b
        else {
            panic!("{b:?}")
        };
        assert_eq!(
            (user.as_str(), host.as_str(), *port, dbname.as_str()),
            ("ms", "db", 5432, "election")
        );
        assert_eq!(password.as_ref().unwrap().expose(), "p@ss");
        assert_eq!(b.to_string(), "postgresql://ms@db:5432/election");
        assert!(!format!("{b:?}").contains("p@ss"));
        let from_env = parse("postgres://ms@db:5432/e", Some("envpw".into())).unwrap();
        let Backend::Postgres { password, .. } = from_env else {
            panic!()
        };
        assert_eq!(password.unwrap().expose(), "envpw");
        let uri_wins = parse("postgres://ms:uri@db:5432/e", Some("envpw".into())).unwrap();
        let Backend::Postgres { password, .. } = uri_wins else {
            panic!()
        };
        assert_eq!(password.unwrap().expose(), "uri");
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        for (uri, why) in [
            ("redis://h:1", "expected etcd://"),
            ("postgresql://db:5432/e", "expected USER"),
            ("postgresql://u@db:5432", "no database"),
            ("postgresql://u@db/e", "HOST:PORT"),
            ("postgresql://:pw@db:1/e", "no user"),
            (
                "etcd://root:pw@h:2379",
                "credentials in the URI are not supported",
            ),
            (
                "etcd://h:1,root:pw@h:2379",
                "credentials in the URI are not supported",
            ),
        ] {
            let e = parse(uri, None).unwrap_err();
            assert!(e.contains(why), "{uri}: {e}");
            assert!(!e.contains("pw"), "{e}");
        }
    }
}

//! What an `approvals` gate counts, and each reason a record does not
//! (keys made from fixed seeds; records as tags on the version and as
//! files).

use std::collections::BTreeMap;

use ssh_key::private::Ed25519Keypair;
use ssh_key::{HashAlg, LineEnding, PrivateKey};

use super::*;
use crate::manifest::approval::{NAMESPACE, Statement};
use crate::manifest::{ApprovalFile, ApproversFile};
use crate::state::Stage;

const REGISTRY: &str = "https://mlflow.example.com";
/// 2026-05-01T12:00:00Z.
const NOW: i64 = 1_777_636_800_000;
const DAY: i64 = 86_400_000;

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

fn public(seed: u8) -> String {
    key(seed).public_key().to_openssh().expect("public key")
}

/// alice (seed 1), bob (2), carol (3); `extra` lines appended.
fn signers(extra: &str) -> AllowedSigners {
    let text = format!(
        "alice {}\nbob {}\ncarol {}\n{extra}",
        public(1),
        public(2),
        public(3)
    );
    AllowedSigners::parse("approvers", &text).expect("signers")
}

fn production() -> GateTarget {
    GateTarget::Stage(Stage::Production)
}

/// An approval of version 3 of fraud for Production, by `who`.
fn approval(who: &str) -> Statement {
    Statement {
        registry: REGISTRY.into(),
        model: "fraud".into(),
        target: production(),
        version: 3,
        source: "s3://models/fraud/3".into(),
        digest: None,
        decision: Decision::Approve,
        principal: who.into(),
        comment: None,
        time_ms: NOW - DAY,
        expires_ms: NOW + DAY,
    }
}

/// `s` signed with the key of `seed`, as stored.
fn record(s: &Statement, seed: u8) -> String {
    let text = s.render();
    let sig = key(seed)
        .sign(NAMESPACE, HashAlg::Sha512, text.as_bytes())
        .and_then(|sig| sig.to_pem(LineEnding::LF))
        .expect("sign");
    Record::render(&text, &sig)
}

fn version(tags: &[(&str, String)]) -> LiveVersion {
    LiveVersion {
        version: 3,
        stage: Stage::Staging,
        source: "s3://models/fraud/3".into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..LiveVersion::default()
    }
}

fn approvals(signers: AllowedSigners, files: &[(&str, String)]) -> Approvals {
    Approvals {
        approvers: Some(ApproversFile {
            path: "m/approvers".into(),
            root: "m".into(),
            origin: Default::default(),
            read: Some((String::new(), signers)),
        }),
        files: files
            .iter()
            .map(|(p, text)| {
                let record = Record::parse(text).expect("a record");
                let file = ApprovalFile {
                    text: text.clone(),
                    record,
                };
                (p.to_string(), file)
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Tallies `tags` on version 3 and `files` for Production, `from`.
fn run(tags: &[(&str, String)], files: &[(&str, String)], from: &ApproverSet) -> Tally {
    run_with(signers(""), tags, files, from)
}

fn run_with(
    signers: AllowedSigners,
    tags: &[(&str, String)],
    files: &[(&str, String)],
    from: &ApproverSet,
) -> Tally {
    let v = version(tags);
    let target = production();
    let subject = Subject {
        registry: REGISTRY,
        model: "fraud",
        target: &target,
        version: &v,
    };
    let a = approvals(signers, files);
    tally(&subject, from, &a, a.signers().expect("read"), NOW)
}

fn listed(names: &[&str]) -> ApproverSet {
    ApproverSet::Listed(names.iter().map(|n| n.to_string()).collect())
}

/// The one reason `t` gives for a record not counting.
fn only_reason(t: &Tally) -> &NotCounted {
    assert_eq!(t.not_counted.len(), 1, "{t:#?}");
    &t.not_counted[0].1
}

const A: &str = "modelsync.approval.Production.alice";
const B: &str = "modelsync.approval.Production.bob";

#[test]
fn two_listed_approvals_pass_a_gate_of_two() {
    let t = run(
        &[(A, record(&approval("alice"), 1))],
        &[("m/approvals/b.approval", record(&approval("bob"), 2))],
        &listed(&["alice", "bob", "carol"]),
    );
    assert_eq!(t.approved_by, ["alice", "bob"]);
    assert!(t.not_counted.is_empty(), "{t:#?}");
    assert_eq!(
        t.outcome(2),
        Ok("2 approvals, 2 required: alice, bob".to_string())
    );
    assert!(t.outcome(3).is_err());
}

#[test]
fn one_approval_is_not_two() {
    let t = run(
        &[(A, record(&approval("alice"), 1))],
        &[],
        &ApproverSet::Any,
    );
    assert_eq!(
        t.outcome(2),
        Err("1 approval, 2 required: alice".to_string())
    );
}

#[test]
fn an_approval_of_another_version_target_registry_model_or_source_does_not_count() {
    let cases = [
        (
            Statement {
                version: 2,
                ..approval("alice")
            },
            NotCounted::OtherVersion(2),
        ),
        (
            Statement {
                target: GateTarget::Stage(Stage::Staging),
                ..approval("alice")
            },
            NotCounted::OtherTarget(GateTarget::Stage(Stage::Staging)),
        ),
        (
            Statement {
                registry: format!("{REGISTRY}#workspace=team-a"),
                ..approval("alice")
            },
            NotCounted::OtherRegistry(format!("{REGISTRY}#workspace=team-a")),
        ),
        (
            Statement {
                model: "other".into(),
                ..approval("alice")
            },
            NotCounted::OtherModel("other".into()),
        ),
        (
            Statement {
                source: "s3://models/fraud/2".into(),
                ..approval("alice")
            },
            NotCounted::OtherSource("s3://models/fraud/2".into()),
        ),
        (
            Statement {
                digest: Some("sha256:aa".into()),
                ..approval("alice")
            },
            NotCounted::OtherDigest {
                signed: "sha256:aa".into(),
                now: None,
            },
        ),
    ];
    for (statement, why) in cases {
        let t = run(&[(A, record(&statement, 1))], &[], &ApproverSet::Any);
        assert_eq!(only_reason(&t), &why);
        assert!(
            t.outcome(1)
                .unwrap_err()
                .contains(&format!("not counted: tag {A}: signed for"))
        );
    }
}

#[test]
fn a_recorded_digest_must_be_the_versions() {
    let signed = Statement {
        digest: Some("sha256:aa".into()),
        ..approval("alice")
    };
    let mut v_tags = vec![(A, record(&signed, 1))];
    v_tags.push((tags::DIGEST, "sha256:aa".to_string()));
    assert_eq!(run(&v_tags, &[], &ApproverSet::Any).approved_by, ["alice"]);
    v_tags[1].1 = "sha256:bb".into();
    let t = run(&v_tags, &[], &ApproverSet::Any);
    assert_eq!(
        only_reason(&t),
        &NotCounted::OtherDigest {
            signed: "sha256:aa".into(),
            now: Some("sha256:bb".into())
        }
    );
}

#[test]
fn an_expired_approval_does_not_count() {
    let old = Statement {
        time_ms: NOW - 10 * DAY,
        expires_ms: NOW - DAY,
        ..approval("alice")
    };
    let t = run(&[(A, record(&old, 1))], &[], &ApproverSet::Any);
    assert_eq!(
        only_reason(&t),
        &NotCounted::Expired("2026-04-30T12:00:00Z".into())
    );
    assert!(
        t.outcome(1)
            .unwrap_err()
            .contains("expired at 2026-04-30T12:00:00Z")
    );
}

#[test]
fn a_key_the_file_does_not_list_does_not_count_nor_a_key_removed_after_signing() {
    // mallory's key (seed 9), claiming to be alice.
    let t = run(
        &[(A, record(&approval("alice"), 9))],
        &[],
        &ApproverSet::Any,
    );
    assert!(matches!(
        only_reason(&t),
        NotCounted::Signature(Refusal::UnknownKey { .. })
    ));
    let text = t.outcome(1).unwrap_err();
    assert!(
        text.contains("which the approvers file does not list"),
        "{text}"
    );
    // bob signed, then his line was removed from the approvers file.
    let only_alice = AllowedSigners::parse("a", &format!("alice {}\n", public(1))).expect("ok");
    let t = run_with(
        only_alice,
        &[(B, record(&approval("bob"), 2))],
        &[],
        &ApproverSet::Any,
    );
    assert!(matches!(
        only_reason(&t),
        NotCounted::Signature(Refusal::UnknownKey { .. })
    ));
}

#[test]
fn a_tag_edited_by_hand_does_not_count() {
    // An approval of version 2, its text edited to name version 3.
    let forged = record(
        &Statement {
            version: 2,
            ..approval("alice")
        },
        1,
    )
    .replace("version: 2", "version: 3");
    let t = run(&[(A, forged)], &[], &ApproverSet::Any);
    assert!(matches!(
        only_reason(&t),
        NotCounted::Signature(Refusal::BadSignature { .. })
    ));
    assert!(t.outcome(1).unwrap_err().contains("altered after key"));
}

#[test]
fn a_principal_the_gate_does_not_list_or_a_key_of_another_principal_does_not_count() {
    let t = run(
        &[(A, record(&approval("carol"), 3))],
        &[],
        &listed(&["alice", "bob"]),
    );
    assert_eq!(
        only_reason(&t),
        &NotCounted::NotListed {
            principal: "carol".into(),
            from: listed(&["alice", "bob"])
        }
    );
    assert!(
        t.outcome(1)
            .unwrap_err()
            .contains("by carol, who is not among [alice, bob]")
    );
    // bob's key, claiming to be alice.
    let t = run(
        &[(A, record(&approval("alice"), 2))],
        &[],
        &ApproverSet::Any,
    );
    assert!(matches!(
        only_reason(&t),
        NotCounted::Signature(Refusal::Principal { .. })
    ));
    // A name in `from` the file does not list is said.
    let t = run(&[], &[], &listed(&["alice", "alcie"]));
    assert_eq!(t.unknown, ["alcie"]);
    assert!(
        t.outcome(1)
            .unwrap_err()
            .contains("not in the approvers file: alcie")
    );
}

#[test]
fn a_key_listed_only_for_other_namespaces_does_not_count() {
    let git_only = signers(&format!("dave namespaces=\"git\" {}\n", public(4)));
    let t = run_with(
        git_only,
        &[(A, record(&approval("dave"), 4))],
        &[],
        &ApproverSet::Any,
    );
    assert!(matches!(
        only_reason(&t),
        NotCounted::Signature(Refusal::Namespace { .. })
    ));
    assert!(
        t.outcome(1)
            .unwrap_err()
            .contains("not allowed for the modelsync-approval namespace")
    );
}

#[test]
fn a_malformed_tag_does_not_count() {
    let t = run(&[(A, "approved!".to_string())], &[], &ApproverSet::Any);
    assert!(matches!(only_reason(&t), NotCounted::Malformed(_)));
}

#[test]
fn a_rejection_blocks_until_a_later_approval_of_the_same_principal() {
    let reject = Statement {
        decision: Decision::Reject,
        comment: Some("drift on B".into()),
        ..approval("carol")
    };
    let tags = vec![
        (A, record(&approval("alice"), 1)),
        (B, record(&approval("bob"), 2)),
        ("modelsync.approval.Production.carol", record(&reject, 3)),
    ];
    let t = run(&tags, &[], &ApproverSet::Any);
    assert_eq!(
        t.rejected_by,
        [("carol".to_string(), Some("drift on B".to_string()))]
    );
    let text = t.outcome(2).unwrap_err();
    assert!(
        text.starts_with("rejected by carol (\"drift on B\"); 2 approvals, 2 required"),
        "{text}"
    );
    // carol approves later, in a file: the rejection is superseded.
    let later = Statement {
        time_ms: NOW - DAY / 2,
        ..approval("carol")
    };
    let t = run(
        &tags,
        &[("m/approvals/c.approval", record(&later, 3))],
        &ApproverSet::Any,
    );
    assert!(t.rejected_by.is_empty(), "{t:#?}");
    assert_eq!(t.approved_by, ["alice", "bob", "carol"]);
    assert!(matches!(
        only_reason(&t),
        NotCounted::Superseded {
            by: Decision::Approve,
            ..
        }
    ));
    // A rejection of another version does not block this one.
    let other = Statement {
        version: 2,
        ..reject
    };
    let t = run(
        &[("modelsync.approval.Production.carol", record(&other, 3))],
        &[],
        &ApproverSet::Any,
    );
    assert!(t.rejected_by.is_empty());
}

#[test]
fn one_key_counts_once_and_files_of_other_models_are_not_read() {
    let shared = signers(&format!("dave {}\n", public(1)));
    let t = run_with(
        shared,
        &[(A, record(&approval("alice"), 1))],
        &[("m/approvals/d.approval", record(&approval("dave"), 1))],
        &ApproverSet::Any,
    );
    assert_eq!(t.approved_by.len(), 1, "{t:#?}");
    assert!(matches!(only_reason(&t), NotCounted::SameKey { .. }));
    let other_model = Statement {
        model: "other".into(),
        ..approval("bob")
    };
    let t = run(
        &[],
        &[("m/approvals/o.approval", record(&other_model, 2))],
        &ApproverSet::Any,
    );
    assert!(
        t.not_counted.is_empty() && t.approved_by.is_empty(),
        "{t:#?}"
    );
}

//! The statement's canonical form, every way a text is not one, and the
//! record around it (signed here with a key made from a fixed seed).

use ssh_key::private::Ed25519Keypair;
use ssh_key::{HashAlg, LineEnding, PrivateKey};

use super::*;
use crate::manifest::signers::{AllowedSigners, Refusal};
use crate::state::Stage;

/// 2026-05-01T12:00:00Z.
const T: i64 = 1_777_636_800_000;
const DAY: i64 = 86_400_000;

pub(crate) fn statement() -> Statement {
    Statement {
        registry: "https://mlflow.example.com#workspace=team-a".into(),
        model: "fraud-detector".into(),
        target: GateTarget::Stage(Stage::Production),
        version: 7,
        source: "s3://models/fraud/7".into(),
        digest: Some("sha256:ab12".into()),
        decision: Decision::Approve,
        principal: "alice@example.com".into(),
        comment: Some("reviewed the eval report".into()),
        time_ms: T,
        expires_ms: T + 30 * DAY,
    }
}

const CANONICAL: &str = "modelsync-approval v1
registry: https://mlflow.example.com#workspace=team-a
model: fraud-detector
target: Production
version: 7
source: s3://models/fraud/7
digest: sha256:ab12
decision: approve
principal: alice@example.com
comment: reviewed the eval report
time: 2026-05-01T12:00:00Z
expires: 2026-05-31T12:00:00Z
";

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

fn sign(key: &PrivateKey, text: &str) -> String {
    key.sign(NAMESPACE, HashAlg::Sha512, text.as_bytes())
        .and_then(|s| s.to_pem(LineEnding::LF))
        .expect("sign")
}

#[test]
fn the_canonical_text_is_exactly_as_documented() {
    assert_eq!(statement().render(), CANONICAL);
    assert_eq!(Statement::parse(CANONICAL), Ok(statement()));
}

#[test]
fn optional_fields_are_left_out_and_aliases_are_written_with_an_at() {
    let s = Statement {
        target: GateTarget::Alias("champion".into()),
        digest: None,
        comment: None,
        decision: Decision::Reject,
        ..statement()
    };
    let text = s.render();
    assert!(
        !text.contains("digest:") && !text.contains("comment:"),
        "{text}"
    );
    assert!(text.contains("\ntarget: @champion\n"), "{text}");
    assert!(text.contains("\ndecision: reject\n"), "{text}");
    assert_eq!(Statement::parse(&text), Ok(s));
}

#[test]
fn every_departure_from_the_canonical_form_is_malformed_with_its_line() {
    let edit = |from: &str, to: &str| CANONICAL.replacen(from, to, 1);
    let cases: Vec<(String, usize, &str)> = vec![
        (
            edit("modelsync-approval v1", "modelsync-approval v2"),
            1,
            "the first line",
        ),
        (CANONICAL.replace('\n', "\r\n"), 1, "CRLF"),
        (CANONICAL.trim_end().to_string(), 12, "end with a newline"),
        (edit("model: ", "modle: "), 3, "unknown field \"modle\""),
        (edit("version: 7\n", ""), 5, "version is missing"),
        (format!("{CANONICAL}model: x\n"), 13, "model is given twice"),
        (
            edit(
                "decision: approve\nprincipal: alice@example.com\n",
                "principal: alice@example.com\ndecision: approve\n",
            ),
            8,
            "out of order",
        ),
        (edit("version: 7", "version: 07"), 5, "not a version number"),
        (edit("version: 7", "version: 0"), 5, "not a version number"),
        (
            edit("target: Production", "target: production"),
            4,
            "write it as Production",
        ),
        (
            edit("target: Production", "target: Prod"),
            4,
            "invalid gate target",
        ),
        (
            edit("decision: approve", "decision: yes"),
            8,
            "approve or reject",
        ),
        (
            edit("principal: alice@example.com", "principal: alice smith"),
            9,
            "no spaces",
        ),
        (
            edit("time: 2026-05-01T12:00:00Z", "time: yesterday"),
            11,
            "not an RFC 3339 time",
        ),
        (
            edit(
                "expires: 2026-05-31T12:00:00Z",
                "expires: 2026-04-30T12:00:00Z",
            ),
            12,
            "later than time",
        ),
        (
            edit("comment: reviewed", "comment: re\u{1b}[31mviewed"),
            10,
            "control character",
        ),
        (
            edit("comment: reviewed the eval report", "comment:  padded"),
            10,
            "must not be empty or start",
        ),
        (
            edit("source: s3", "source s3"),
            6,
            "expected \"key: value\"",
        ),
        (
            edit("reviewed the eval report", &"x".repeat(MAX_COMMENT + 1)),
            10,
            "at most 500",
        ),
    ];
    for (text, line, says) in cases {
        let err = Statement::parse(&text).expect_err(says);
        assert_eq!(err.line, line, "{says}: {err}");
        assert!(err.message.contains(says), "{says}: {err}");
    }
}

#[test]
fn a_record_is_the_statement_then_its_signature_and_verifies_as_ssh_keygen_does() {
    let alice = key(1);
    let signers = AllowedSigners::parse(
        "approvers",
        &format!(
            "alice@example.com {}\n",
            alice.public_key().to_openssh().expect("key")
        ),
    )
    .expect("signers");
    let text = Record::render(CANONICAL, &sign(&alice, CANONICAL));
    let record = Record::parse(&text).expect("a record");
    assert_eq!(record.statement, statement());
    assert_eq!(record.signed, CANONICAL);
    assert!(
        record
            .signature
            .starts_with("-----BEGIN SSH SIGNATURE-----\n")
    );
    let ok = record.verify(&signers).expect("verifies");
    assert_eq!(ok.principals, "alice@example.com");

    // Edited after signing: the statement still parses, the signature fails.
    let tampered = Record::parse(&text.replace("version: 7", "version: 8")).expect("parses");
    assert!(matches!(
        tampered.verify(&signers),
        Err(Refusal::BadSignature { .. })
    ));
    // Signed in another namespace (a git commit signature, say).
    let git = key(1)
        .sign("git", HashAlg::Sha512, CANONICAL.as_bytes())
        .and_then(|s| s.to_pem(LineEnding::LF))
        .expect("sign");
    let other = Record::parse(&Record::render(CANONICAL, &git)).expect("parses");
    assert!(matches!(
        other.verify(&signers),
        Err(Refusal::BadSignature { .. })
    ));
    // Signed by someone else claiming to be alice.
    let forged =
        Record::parse(&Record::render(CANONICAL, &sign(&key(2), CANONICAL))).expect("parses");
    assert!(matches!(
        forged.verify(&signers),
        Err(Refusal::UnknownKey { .. })
    ));
}

#[test]
fn a_text_without_statement_or_signature_is_not_a_record() {
    let sig = sign(&key(1), CANONICAL);
    for (text, says) in [
        (
            CANONICAL.to_string(),
            "no statement followed by a signature",
        ),
        (sig.clone(), "no statement followed by a signature"),
        (
            format!(
                "{CANONICAL}{}",
                sig.replace("-----END SSH SIGNATURE-----", "")
            ),
            "does not end with",
        ),
        (
            format!("{}{sig}", CANONICAL.replace("model:", "modle:")),
            "unknown field",
        ),
        ("x".repeat(MAX_RECORD + 1), "larger than"),
    ] {
        let err = Record::parse(&text).expect_err(says);
        assert!(err.message.contains(says), "{says}: {err}");
    }
}

#[test]
fn tag_keys_and_file_names_are_one_per_principal_and_target() {
    let target = GateTarget::Stage(Stage::Production);
    assert_eq!(
        tag_key(&target, "alice"),
        "modelsync.approval.Production.alice"
    );
    let mail = tag_key(&GateTarget::Alias("champion".into()), "alice@example.com");
    assert!(
        mail.starts_with("modelsync.approval.champion.alice_example.com-"),
        "{mail}"
    );
    assert_ne!(
        mail,
        tag_key(&GateTarget::Alias("champion".into()), "alice_example.com")
    );
    let long = tag_key(&GateTarget::Alias("a".repeat(255)), "bob");
    for key in [mail, long] {
        assert_eq!(crate::naming::tag_key_problem(&key), None, "{key}");
    }
    assert!(
        file_name(&statement())
            .starts_with("approvals/fraud-detector/Production/v7.alice_example.com-"),
        "{}",
        file_name(&statement())
    );
    assert!(file_name(&statement()).ends_with(".approval"));
}

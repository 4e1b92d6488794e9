use super::*;
use crate::outputs::Values;

fn values() -> std::collections::BTreeMap<String, Values> {
    let mut v = Values::new();
    v.insert(Field::Uri, "s3://models/fraud/8".into());
    v.insert(Field::Digest, "sha256:abcd".into());
    v.insert(Field::Version, "8".into());
    v.insert(Field::Run, "r8".into());
    let mut all = std::collections::BTreeMap::new();
    all.insert("fraud@champion".to_string(), v.clone());
    all.insert("fraud@Production".to_string(), v);
    all
}

/// Rewrites `text` as if `fraud@champion` and `fraud@Production` were
/// version 8 (no logged model); any other model is unknown.
fn apply(text: &str) -> Rewritten {
    let all = values();
    rewrite(
        "serving/isvc.yaml",
        text,
        &|r, f| match all.get(&r.to_string()) {
            Some(v) => v
                .get(&f)
                .cloned()
                .map(Some)
                .ok_or_else(|| format!("{r} has no {}", f.as_str())),
            None => Err(format!("unknown model {:?}", r.model)),
        },
    )
}

const M: &str = r#"{"$modelsync": "fraud@champion:uri"}"#;

#[test]
fn only_the_marked_plain_scalar_changes() {
    let text = format!(
        "# head comment\nspec:\n  predictor:\n    model:\n      storageUri: s3://models/fraud/7   # {M}\n      runtime: x # other\n"
    );
    let out = apply(&text);
    assert_eq!(out.errors, Vec::<String>::new());
    assert_eq!(
        out.text,
        text.replace("s3://models/fraud/7 ", "s3://models/fraud/8 ")
    );
    assert_eq!(out.changes.len(), 1);
    let c = &out.changes[0];
    assert_eq!(
        (c.line, c.old.as_str(), c.new.as_str()),
        (5, "s3://models/fraud/7", "s3://models/fraud/8")
    );
    assert_eq!(c.marker, "fraud@champion:uri");
    assert_eq!(
        c.to_string(),
        "serving/isvc.yaml:5 fraud@champion:uri: s3://models/fraud/7 -> s3://models/fraud/8"
    );
}

#[test]
fn quoting_style_is_kept() {
    let double = format!("uri: \"s3://old\" # {M}\n");
    assert_eq!(
        apply(&double).text,
        format!("uri: \"s3://models/fraud/8\" # {M}\n")
    );
    let single = format!("uri: 's3://old'  # {M}\n");
    assert_eq!(
        apply(&single).text,
        format!("uri: 's3://models/fraud/8'  # {M}\n")
    );
    let quoted_key = format!("\"storage uri\" : old # {M}\n");
    assert_eq!(
        apply(&quoted_key).text,
        format!("\"storage uri\" : s3://models/fraud/8 # {M}\n")
    );
}

#[test]
fn a_value_that_cannot_stay_plain_is_double_quoted() {
    let all = values();
    let _ = all;
    let text = r#"v: x # {"$modelsync": "fraud@champion:version"}"#.to_string() + "\n";
    let out = rewrite("f.yaml", &text, &|_, _| Ok(Some("a: b".into())));
    assert!(out.text.starts_with("v: \"a: b\" # "), "{}", out.text);
    let out = rewrite("f.yaml", &text, &|_, _| Ok(Some("true".into())));
    assert!(out.text.starts_with("v: \"true\" # "), "{}", out.text);
}

#[test]
fn sequence_items_and_flow_collections() {
    let item = format!("args:\n  - s3://old  # {M}\n");
    assert_eq!(
        apply(&item).text,
        format!("args:\n  - s3://models/fraud/8  # {M}\n")
    );
    let flow_map = format!("model: {{format: sklearn, storageUri: s3://old}}  # {M}\n");
    assert_eq!(
        apply(&flow_map).text,
        format!("model: {{format: sklearn, storageUri: s3://models/fraud/8}}  # {M}\n")
    );
    let flow_seq = format!("uris: [a, \"s3://old\"] # {M}\n");
    assert_eq!(
        apply(&flow_seq).text,
        format!("uris: [a, \"s3://models/fraud/8\"] # {M}\n")
    );
    let seq_map = format!("- storageUri: s3://old # {M}\n");
    assert_eq!(
        apply(&seq_map).text,
        format!("- storageUri: s3://models/fraud/8 # {M}\n")
    );
}

#[test]
fn crlf_line_endings_and_a_missing_final_newline_are_kept() {
    let text = format!("a: 1\r\nuri: s3://old # {M}\r\nb: 2\r\nlast: s3://old # {M}");
    let out = apply(&text);
    assert_eq!(
        out.text,
        format!(
            "a: 1\r\nuri: s3://models/fraud/8 # {M}\r\nb: 2\r\nlast: s3://models/fraud/8 # {M}"
        )
    );
    assert_eq!(out.changes.len(), 2);
}

#[test]
fn several_markers_per_file_and_stages() {
    let text = "uri: s3://old # {\"$modelsync\": \"fraud@champion:uri\"}\n\
                digest: sha256:old # {\"$modelsync\": \"fraud@champion:digest\"}\n\
                version: \"7\" # {\"$modelsync\": \"fraud@Production:version\"}\n\
                run: r8 # {\"$modelsync\": \"fraud@champion:run\"}\n";
    let out = apply(text);
    assert_eq!(out.errors, Vec::<String>::new());
    assert_eq!(
        out.changes.iter().map(|c| c.line).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "the run already holds its value: no change"
    );
    assert!(out.text.contains("version: \"8\" #"));
    let (markers, errors) = find("f.yaml", text);
    assert!(errors.is_empty());
    assert_eq!(
        markers[2].reference.target,
        Target::Stage(Stage::Production)
    );
    assert_eq!(markers[3].field, Field::Run);
}

#[test]
fn an_empty_value_is_filled_in() {
    let text = format!("uri:   # {M}\n");
    assert_eq!(
        apply(&text).text,
        format!("uri: s3://models/fraud/8   # {M}\n")
    );
}

#[test]
fn nothing_changes_when_the_file_holds_the_values() {
    let text = format!("uri: s3://models/fraud/8 # {M}\nother: 1\n");
    let out = apply(&text);
    assert_eq!(out.text, text);
    assert!(out.changes.is_empty() && out.errors.is_empty());
}

#[test]
fn an_unknown_model_is_an_error_with_file_line_and_column() {
    let text = "a: 1\nuri: old # {\"$modelsync\": \"nope@champion:uri\"}\n";
    let out = apply(text);
    assert_eq!(
        out.errors,
        vec!["serving/isvc.yaml:2:10: unknown model \"nope\"".to_string()]
    );
    assert_eq!(out.text, text, "a file with problems is left as it was");
}

#[test]
fn malformed_markers_are_reported_all_at_once() {
    let text = "a: x # {\"$modelsync\": \"fraud@champion:url\"}\n\
                b: x # {\"$modelsync\": \"fraud:uri\"}\n\
                c: x # {\"$modelsync\": \"fraud@champion:uri\", \"x\": \"y\"}\n\
                d: |  # {\"$modelsync\": \"fraud@champion:uri\"}\n\
                # {\"$modelsync\": \"fraud@champion:uri\"}\n\
                e: \"x\" y # {\"$modelsync\": \"fraud@champion:uri\"}\n\
                f: x # {\"$modelsync\": \"fraud@bad alias:uri\"}\n\
                g: x # {\"$modelsync\": 1}\n";
    let (markers, errors) = find("f.yaml", text);
    assert!(markers.is_empty());
    assert_eq!(errors.len(), 8, "{errors:#?}");
    assert!(
        errors[0].starts_with("f.yaml:1:6: marker \"fraud@champion:url\": unknown field \"url\""),
        "{}",
        errors[0]
    );
    assert!(errors[1].starts_with("f.yaml:2:"), "{}", errors[1]);
    assert!(errors[2].contains("exactly one key"), "{}", errors[2]);
    assert!(errors[3].contains("block scalar"), "{}", errors[3]);
    assert!(errors[4].contains("must follow a value"), "{}", errors[4]);
    assert!(
        errors[5].contains("text follows the quoted value"),
        "{}",
        errors[5]
    );
    assert!(errors[6].contains("invalid alias"), "{}", errors[6]);
    assert!(errors[7].contains("not a JSON object"), "{}", errors[7]);
}

#[test]
fn a_hash_inside_a_value_is_not_a_comment() {
    let text = format!("uri: \"s3://a#b\" # {M}\nnote: a#b\n");
    assert_eq!(
        apply(&text).text,
        format!("uri: \"s3://models/fraud/8\" # {M}\nnote: a#b\n")
    );
}

#[test]
fn lines_without_the_marker_key_are_untouched_byte_for_byte() {
    let text = "# each $modelsync marker names a value\na:   'x'   # plain comment {\"k\": 1}\n\tb: \"y\"\r\n";
    let out = apply(text);
    assert_eq!(out.text, text);
    assert!(out.changes.is_empty() && out.errors.is_empty());
}

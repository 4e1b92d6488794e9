//! Marker comments and the line-based rewriter.
//!
//! A marker is a comment that ends a YAML line and holds one JSON object,
//! `{"$modelsync": "MODEL@TARGET:FIELD"}`; it names the value that
//! replaces the last scalar before it on that line: a block mapping's
//! value (`key: value`), a sequence item (`- value`), or, in flow style
//! (`{a: x, b: y}`, `[x, y]`), the last scalar of the collection. Only
//! that scalar's bytes change, in the quoting style it was written in
//! (a plain scalar that could not stay plain is double-quoted); comments,
//! spacing, other lines and line endings (CRLF too) stay byte for byte.
//! Never a YAML round-trip: nothing here parses the document.

use super::{Change, Field, MARKER_KEY, Reference, Target};
use crate::state::Stage;

/// One marker, where it is and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// 1-based line and column (of the comment's `#`).
    pub line: usize,
    pub column: usize,
    pub reference: Reference,
    pub field: Field,
    /// `MODEL@TARGET:FIELD` as written.
    pub written: String,
}

/// A file after its markers were applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// The new text (equal to the old one when nothing changed).
    pub text: String,
    pub changes: Vec<Change>,
    /// `file:line:column: message`, every problem found; a file with
    /// problems must not be written.
    pub errors: Vec<String>,
}

/// The markers of `text` (`file` names it in errors), and every problem
/// with one (`file:line:column: message`).
pub fn find(file: &str, text: &str) -> (Vec<Marker>, Vec<String>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let (content, _) = split_ending(raw);
        match marked(content) {
            None => {}
            Some(Err((column, why))) => errors.push(format!("{file}:{}:{column}: {why}", i + 1)),
            Some(Ok(line)) => found.push(Marker {
                line: i + 1,
                ..line.marker
            }),
        }
    }
    (found, errors)
}

/// What a marker's reference and field stand for: `Ok(None)` leaves the
/// field as it is, `Err(why)` is a problem at the marker's line.
pub type Lookup<'a> = &'a dyn Fn(&Reference, Field) -> Result<Option<String>, String>;

/// Applies every marker of `text`: `lookup` gives the value a marker's
/// reference and field stand for (`Ok(None)`: leave this field as it is;
/// `Err(why)`: a problem at the marker's line).
pub fn rewrite(file: &str, text: &str, lookup: Lookup<'_>) -> Rewritten {
    let mut out = Rewritten {
        text: String::with_capacity(text.len()),
        ..Rewritten::default()
    };
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let (content, ending) = split_ending(raw);
        let line = match marked(content) {
            None => {
                out.text.push_str(raw);
                continue;
            }
            Some(Err((column, why))) => {
                out.errors.push(format!("{file}:{}:{column}: {why}", i + 1));
                out.text.push_str(raw);
                continue;
            }
            Some(Ok(line)) => line,
        };
        let at = format!("{file}:{}:{}", i + 1, line.marker.column);
        match lookup(&line.marker.reference, line.marker.field) {
            Err(why) => out.errors.push(format!("{at}: {why}")),
            Ok(Some(new)) if new != line.scalar.value => {
                out.text.push_str(&content[..line.scalar.start]);
                out.text.push_str(&line.scalar.render(&new));
                out.text.push_str(&content[line.scalar.end..]);
                out.text.push_str(ending);
                out.changes.push(Change {
                    file: file.to_string(),
                    line: i + 1,
                    marker: line.marker.written,
                    old: line.scalar.value,
                    new,
                });
                continue;
            }
            Ok(_) => {}
        }
        out.text.push_str(raw);
    }
    out
}

/// A marked line: its marker and the scalar it replaces.
struct Marked {
    marker: Marker,
    scalar: Scalar,
}

/// The scalar a marker replaces: its byte span on the line, its style and
/// its value (unquoted).
#[derive(Debug, PartialEq, Eq)]
struct Scalar {
    start: usize,
    end: usize,
    style: Style,
    /// Inside a flow collection (`,[]{}` cannot stay plain).
    flow: bool,
    /// Nothing was written after `key:` (the new value gets a space).
    empty: bool,
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Double,
    Single,
}

impl Scalar {
    /// `value` written in this scalar's style.
    fn render(&self, value: &str) -> String {
        let style = match self.style {
            Style::Plain if !plain_safe(value, self.flow) => Style::Double,
            s => s,
        };
        let text = match style {
            Style::Plain => value.to_string(),
            Style::Single => format!("'{}'", value.replace('\'', "''")),
            Style::Double => {
                let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
                format!("\"{escaped}\"")
            }
        };
        if self.empty { format!(" {text}") } else { text }
    }
}

/// `(content, ending)`: the line without its `\n` or `\r\n`, and that.
fn split_ending(raw: &str) -> (&str, &str) {
    let cut = if raw.ends_with("\r\n") {
        raw.len() - 2
    } else if raw.ends_with('\n') {
        raw.len() - 1
    } else {
        raw.len()
    };
    (&raw[..cut], &raw[cut..])
}

/// `None`: the line has no marker. Else the marker and its scalar, or
/// (column, why) the line's marker cannot be used.
fn marked(line: &str) -> Option<Result<Marked, (usize, String)>> {
    let quoted = format!("\"{MARKER_KEY}\"");
    if !line.contains(&quoted) {
        return None;
    }
    let Some(hash) = marker_start(line) else {
        let column = line[..line.find(&quoted).unwrap_or(0)].chars().count() + 1;
        return Some(Err((
            column,
            format!(
                "a {MARKER_KEY} marker must be a comment ending the line: \
                 `value  # {{\"{MARKER_KEY}\": \"MODEL@ALIAS:FIELD\"}}`"
            ),
        )));
    };
    let column = line[..hash].chars().count() + 1;
    let at = |why: String| (column, why);
    Some((|| {
        let (reference, field, written) = parse_marker(&line[hash + 1..]).map_err(at)?;
        let scalar = scalar(line[..hash].trim_end()).map_err(at)?;
        Ok(Marked {
            marker: Marker {
                line: 0,
                column,
                reference,
                field,
                written,
            },
            scalar,
        })
    })())
}

/// The byte offset of the `#` that starts the marker comment: the last
/// `#` at the start of the line or after a space, followed by the object.
fn marker_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    line.char_indices()
        .rev()
        .filter(|(i, c)| *c == '#' && (*i == 0 || matches!(bytes[i - 1], b' ' | b'\t')))
        .map(|(i, _)| i)
        .find(|i| {
            let rest = line[i + 1..].trim();
            rest.starts_with('{') && rest.ends_with('}') && rest.contains(MARKER_KEY)
        })
}

/// The marker's object: exactly `{"$modelsync": "MODEL@TARGET:FIELD"}`.
fn parse_marker(comment: &str) -> Result<(Reference, Field, String), String> {
    let object: std::collections::BTreeMap<String, String> =
        serde_json::from_str(comment.trim()).map_err(|e| {
            format!("the marker is not a JSON object of one string ({e}): write {{\"{MARKER_KEY}\": \"MODEL@ALIAS:FIELD\"}}")
        })?;
    let written = match (object.len(), object.get(MARKER_KEY)) {
        (1, Some(w)) => w.clone(),
        _ => {
            return Err(format!(
                "the marker must hold exactly one key, \"{MARKER_KEY}\""
            ));
        }
    };
    let fields = || {
        Field::ALL
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (reference, field) = written.rsplit_once(':').ok_or_else(|| {
        format!(
            "marker {written:?}: write MODEL@ALIAS:FIELD (FIELD one of {})",
            fields()
        )
    })?;
    let field = Field::parse(field).ok_or_else(|| {
        format!(
            "marker {written:?}: unknown field {field:?}; expected one of {}",
            fields()
        )
    })?;
    let reference =
        parse_reference(reference).map_err(|why| format!("marker {written:?}: {why}"))?;
    Ok((reference, field, written))
}

/// `MODEL@ALIAS` or `MODEL@STAGE` (`Staging`, `Production`).
pub fn parse_reference(s: &str) -> Result<Reference, String> {
    let (model, target) = s
        .rsplit_once('@')
        .filter(|(m, t)| !m.is_empty() && !t.is_empty())
        .ok_or_else(|| "name a model and an alias or stage: MODEL@ALIAS".to_string())?;
    let target = match target {
        "Staging" => Target::Stage(Stage::Staging),
        "Production" => Target::Stage(Stage::Production),
        alias => match crate::naming::alias_format_problem(alias) {
            None => Target::Alias(alias.to_string()),
            Some(problem) => return Err(problem),
        },
    };
    Ok(Reference {
        model: model.to_string(),
        target,
    })
}

/// The scalar at the end of `pre` (the line before the marker, trimmed).
fn scalar(pre: &str) -> Result<Scalar, String> {
    let mut i = pre.len() - pre.trim_start().len();
    while pre[i..].starts_with("- ") || &pre[i..] == "-" {
        i = (i + 1..=pre.len())
            .find(|&j| !pre[j..].starts_with([' ', '\t']))
            .unwrap_or(pre.len());
    }
    if pre[i..].is_empty() {
        return Err("a marker must follow a value on its line".into());
    }
    let mut empty = false;
    if let Some(after) = key_end(&pre[i..]) {
        i += after;
        let value = pre[i..].trim_start();
        i = pre.len() - value.len();
        empty = value.is_empty();
    }
    let value = &pre[i..];
    if value.starts_with(['|', '>']) {
        return Err(
            "a marker cannot replace a block scalar (| or >); write the value on the line".into(),
        );
    }
    if value.starts_with(['&', '!', '*']) {
        return Err("a marker cannot replace an anchored, tagged or aliased value".into());
    }
    if value.starts_with(['{', '[']) {
        return flow_last(pre, i);
    }
    let (style, text) = match value.chars().next() {
        Some('"') => (Style::Double, quoted_whole(value, '"')?),
        Some('\'') => (Style::Single, quoted_whole(value, '\'')?),
        _ => (Style::Plain, value.to_string()),
    };
    Ok(Scalar {
        start: i,
        end: pre.len(),
        style,
        flow: false,
        empty,
        value: text,
    })
}

/// After `key:` at the start of `s` (a plain or quoted key), the offset
/// just past the colon; `None` when `s` is not a mapping entry.
fn key_end(s: &str) -> Option<usize> {
    let after_key = match s.chars().next()? {
        '{' | '[' => return None,
        q @ ('"' | '\'') => closing_quote(s, q)? + 1,
        _ => {
            let colon = s
                .match_indices(':')
                .map(|(k, _)| k)
                .find(|&k| s[k + 1..].is_empty() || s[k + 1..].starts_with([' ', '\t']))?;
            if s[..colon].contains(" #") {
                return None;
            }
            colon
        }
    };
    let rest = &s[after_key..];
    let colon = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    let end = after_key + colon;
    (s[end..].starts_with(':')
        && (s[end + 1..].is_empty() || s[end + 1..].starts_with([' ', '\t'])))
    .then_some(end + 1)
}

/// The offset of the quote closing the quoted scalar that `s` starts with.
fn closing_quote(s: &str, q: char) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut k = 1;
    while k < bytes.len() {
        match (bytes[k], q) {
            (b'\\', '"') => k += 2,
            (b'"', '"') => return Some(k),
            (b'\'', '\'') if bytes.get(k + 1) == Some(&b'\'') => k += 2,
            (b'\'', '\'') => return Some(k),
            _ => k += 1,
        }
    }
    None
}

/// The unquoted value of `s`, a quoted scalar that must fill all of `s`.
fn quoted_whole(s: &str, q: char) -> Result<String, String> {
    match closing_quote(s, q) {
        Some(end) if end == s.len() - 1 => Ok(unquote(&s[1..end], q)),
        Some(_) => Err("text follows the quoted value before the marker".into()),
        None => Err("the quoted value does not end on this line".into()),
    }
}

fn unquote(inner: &str, q: char) -> String {
    if q == '\'' {
        return inner.replace("''", "'");
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The last scalar of the flow collection that starts at `pre[i..]`.
fn flow_last(pre: &str, i: usize) -> Result<Scalar, String> {
    let end = pre.trim_end_matches([']', '}', ' ', '\t']).len();
    if end <= i {
        return Err("the flow collection before the marker holds no value".into());
    }
    let body = &pre[..end];
    let (start, style) = match body.chars().last() {
        Some(q @ ('"' | '\'')) => {
            let start = (i..end - 1)
                .rev()
                .find(|&k| {
                    body[k..].starts_with(q) && closing_quote(&body[k..], q) == Some(end - 1 - k)
                })
                .ok_or("the quoted value does not start on this line")?;
            let style = if q == '"' {
                Style::Double
            } else {
                Style::Single
            };
            (start, style)
        }
        _ => {
            let bytes = body.as_bytes();
            let delimiter = (i..end).rev().find(|&k| {
                matches!(bytes[k], b',' | b'[' | b'{')
                    || (bytes[k] == b':' && matches!(bytes.get(k + 1), Some(b' ' | b'\t')))
            });
            let from = delimiter.map_or(i, |k| k + 1);
            let value = body[from..].trim_start();
            (end - value.len(), Style::Plain)
        }
    };
    let text = &body[start..end];
    if text.is_empty() {
        return Err("the flow collection before the marker holds no value".into());
    }
    let value = match style {
        Style::Plain => text.to_string(),
        Style::Double => unquote(&text[1..text.len() - 1], '"'),
        Style::Single => unquote(&text[1..text.len() - 1], '\''),
    };
    Ok(Scalar {
        start,
        end,
        style,
        flow: true,
        empty: false,
        value,
    })
}

/// True when `v` reads back as the same string written as a plain scalar.
fn plain_safe(v: &str, flow: bool) -> bool {
    let first_ok = v
        .chars()
        .next()
        .is_some_and(|c| !"-?:,[]{}#&*!|>'\"%@`".contains(c) && !c.is_whitespace());
    let reserved = ["true", "false", "null", "~", "yes", "no", "on", "off"]
        .iter()
        .any(|r| v.eq_ignore_ascii_case(r));
    first_ok
        && !reserved
        && !v.ends_with([' ', '\t', ':'])
        && !v.contains(": ")
        && !v.contains(" #")
        && !v.contains(['\n', '\r', '\t'])
        && !(flow && v.contains([',', '[', ']', '{', '}']))
}

#[cfg(test)]
#[path = "markers_tests.rs"]
mod tests;

//! Characters a reviewer cannot see: bidirectional controls (which reorder
//! what is displayed, "Trojan Source") and zero-width characters. A template
//! holding one is flagged in the plan, as GitHub flags such a file in a
//! diff, naming each character and its line; the template is not altered.
//! Pure.

/// One hidden character: where it is (1-based line and column, in
/// characters) and which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hidden {
    pub line: usize,
    pub column: usize,
    pub ch: char,
}

/// The most lines of one text that are named in warnings; the rest are
/// counted.
pub const MAX_LINES: usize = 10;

/// Every hidden character in `text`, in order.
pub fn find(text: &str) -> Vec<Hidden> {
    let mut found = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        for (j, ch) in line.chars().enumerate() {
            if name(ch).is_some() {
                found.push(Hidden {
                    line: i + 1,
                    column: j + 1,
                    ch,
                });
            }
        }
    }
    found
}

/// The Unicode name of a hidden character, and whether it is a
/// bidirectional control; `None` for any other character.
pub fn name(ch: char) -> Option<(&'static str, bool)> {
    let bidi = |n| Some((n, true));
    let zero = |n| Some((n, false));
    match ch {
        '\u{202A}' => bidi("LEFT-TO-RIGHT EMBEDDING"),
        '\u{202B}' => bidi("RIGHT-TO-LEFT EMBEDDING"),
        '\u{202C}' => bidi("POP DIRECTIONAL FORMATTING"),
        '\u{202D}' => bidi("LEFT-TO-RIGHT OVERRIDE"),
        '\u{202E}' => bidi("RIGHT-TO-LEFT OVERRIDE"),
        '\u{2066}' => bidi("LEFT-TO-RIGHT ISOLATE"),
        '\u{2067}' => bidi("RIGHT-TO-LEFT ISOLATE"),
        '\u{2068}' => bidi("FIRST STRONG ISOLATE"),
        '\u{2069}' => bidi("POP DIRECTIONAL ISOLATE"),
        '\u{200E}' => bidi("LEFT-TO-RIGHT MARK"),
        '\u{200F}' => bidi("RIGHT-TO-LEFT MARK"),
        '\u{061C}' => bidi("ARABIC LETTER MARK"),
        '\u{200B}' => zero("ZERO WIDTH SPACE"),
        '\u{200C}' => zero("ZERO WIDTH NON-JOINER"),
        '\u{200D}' => zero("ZERO WIDTH JOINER"),
        '\u{2060}' => zero("WORD JOINER"),
        '\u{FEFF}' => zero("ZERO WIDTH NO-BREAK SPACE"),
        _ => None,
    }
}

/// The warnings for `text`, the template `what` (`template of v2
/// (m/tpl/v2.txt)`): one per line holding hidden characters, naming each,
/// at most [`MAX_LINES`] lines and then how many more.
pub fn warnings(what: &str, text: &str) -> Vec<String> {
    let found = find(text);
    let mut lines: Vec<(usize, Vec<Hidden>)> = Vec::new();
    for h in found {
        match lines.last_mut() {
            Some((line, hs)) if *line == h.line => hs.push(h),
            _ => lines.push((h.line, vec![h])),
        }
    }
    let more = lines.len().saturating_sub(MAX_LINES);
    let mut out: Vec<String> = lines
        .iter()
        .take(MAX_LINES)
        .map(|(line, hs)| {
            let named: Vec<String> = hs.iter().map(describe).collect();
            let bidi = hs.iter().any(|h| name(h.ch).is_some_and(|(_, b)| b));
            let kind = if bidi {
                "hidden or bidirectional Unicode"
            } else {
                "hidden Unicode"
            };
            format!(
                "{what}, line {line}: {} ({kind}: the text may read differently than it displays)",
                named.join(", ")
            )
        })
        .collect();
    if more > 0 {
        out.push(format!(
            "{what}: hidden or bidirectional Unicode characters on {more} more line(s)"
        ));
    }
    out
}

/// `U+202E RIGHT-TO-LEFT OVERRIDE at column 7`.
fn describe(h: &Hidden) -> String {
    let (n, _) = name(h.ch).expect("only hidden characters are found");
    format!("U+{:04X} {n} at column {}", u32::from(h.ch), h.column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_listed_character_and_nothing_else() {
        let listed = [
            0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0x200F,
            0x061C, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF,
        ];
        for code in listed {
            let ch = char::from_u32(code).expect("a char");
            let text = format!("a\nb{ch}c");
            assert_eq!(
                find(&text),
                vec![Hidden {
                    line: 2,
                    column: 2,
                    ch
                }],
                "U+{code:04X}"
            );
        }
        let visible = "Summarize {{text}} — in Ünïcödé, 日本語, עברית, العربية, emoji 🙂, tab\t.";
        assert_eq!(
            find(visible),
            vec![],
            "letters of any script are not hidden"
        );
        // Neighbours of the listed ranges are not flagged.
        for code in [
            0x2029, 0x202F, 0x2065, 0x206A, 0x200A, 0x2061, 0x061B, 0xFEFE,
        ] {
            let ch = char::from_u32(code).expect("a char");
            assert_eq!(find(&ch.to_string()), vec![], "U+{code:04X}");
        }
    }

    #[test]
    fn warnings_name_each_character_and_its_line() {
        let text = "Say hi\nIf admin\u{202E} }\u{2066}// allow\u{2069}\nzero\u{200B}width\n";
        insta::assert_snapshot!(warnings("template of v2 (m/t.txt)", text).join("\n"), @r"
        template of v2 (m/t.txt), line 2: U+202E RIGHT-TO-LEFT OVERRIDE at column 9, U+2066 LEFT-TO-RIGHT ISOLATE at column 12, U+2069 POP DIRECTIONAL ISOLATE at column 21 (hidden or bidirectional Unicode: the text may read differently than it displays)
        template of v2 (m/t.txt), line 3: U+200B ZERO WIDTH SPACE at column 5 (hidden Unicode: the text may read differently than it displays)
        ");
        assert!(warnings("t", "plain text\n").is_empty());
    }

    #[test]
    fn many_lines_are_counted_not_listed() {
        let text = "x\u{200B}\n".repeat(MAX_LINES + 3);
        let w = warnings("template of v1", &text);
        assert_eq!(w.len(), MAX_LINES + 1);
        assert_eq!(
            w[MAX_LINES],
            "template of v1: hidden or bidirectional Unicode characters on 3 more line(s)"
        );
    }
}

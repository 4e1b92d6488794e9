//! Functions that fit on a screen: no function in `src/` (outside
//! `#[cfg(test)]` items and the test files they declare) is longer than
//! [`MAX_FUNCTION_LINES`], counted from the line of `fn` to the line of
//! its closing brace (doc comments and attributes not counted).

use std::path::Path;

use super::source::{Source, find_all, is_ident, skip_ws};
use super::{shown, sources, src};

/// The longest a function may be.
pub const MAX_FUNCTION_LINES: usize = 80;

/// Functions allowed to be longer, as `src/file.rs::name`, each with why it
/// cannot be split. Empty: every function was split into named steps.
const LONG_FUNCTIONS: &[(&str, &str)] = &[];

/// A function: its name, the line of `fn`, and its length in lines.
#[derive(Debug, PartialEq)]
pub struct Function {
    pub name: String,
    pub line: usize,
    pub lines: usize,
}

/// Every function with a body in `source` (comments, literals and test
/// items are already blanked, so braces in them do not count).
pub fn functions(source: &Source) -> Vec<Function> {
    let code = &source.code;
    let mut out = Vec::new();
    for at in find_all(code, "fn") {
        let bounded = (at == 0 || !is_ident(code[at - 1]))
            && code.get(at + 2).is_some_and(|c| c.is_whitespace());
        if !bounded {
            continue;
        }
        let start = skip_ws(code, at + 2);
        let end = (start..code.len())
            .find(|&i| !is_ident(code[i]))
            .unwrap_or(code.len());
        if end == start {
            continue;
        }
        let Some(close) = body_end(code, end) else {
            continue;
        };
        let line = source.line_of(at);
        out.push(Function {
            name: code[start..end].iter().collect(),
            line,
            lines: source.line_of(close) - line + 1,
        });
    }
    out
}

/// The closing brace of the body after a signature starting at `from`;
/// `None` for a declaration without a body (`fn f();` in a trait).
fn body_end(code: &[char], from: usize) -> Option<usize> {
    let mut nesting = 0i32;
    let mut open = None;
    for (i, c) in code.iter().enumerate().skip(from) {
        match c {
            '(' | '[' | '<' if open.is_none() => nesting += 1,
            ')' | ']' | '>' if open.is_none() && !(*c == '>' && code[i - 1] == '-') => nesting -= 1,
            ';' if open.is_none() && nesting <= 0 => return None,
            '{' if open.is_none() && nesting <= 0 => open = Some((i, 1)),
            '{' => open = open.map(|(s, d)| (s, d + 1)),
            '}' if open.is_some() => {
                let (s, d) = open.expect("open");
                if d == 1 {
                    return Some(i);
                }
                open = Some((s, d - 1));
            }
            _ => {}
        }
    }
    None
}

#[test]
fn no_function_is_longer_than_a_screen() {
    let mut long = Vec::new();
    for (file, source) in sources(&src()) {
        let file = shown(&file);
        for f in functions(&source) {
            let key = format!("{file}::{}", f.name);
            if f.lines > MAX_FUNCTION_LINES && !LONG_FUNCTIONS.iter().any(|(k, _)| *k == key) {
                long.push(format!(
                    "{file}:{}: fn {} is {} lines",
                    f.line, f.name, f.lines
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions in src/ longer than {MAX_FUNCTION_LINES} lines:\n{}\n\
         Split each into named steps that read as the algorithm.",
        long.join("\n")
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in LONG_FUNCTIONS {
        let file = key.split("::").next().unwrap_or(key);
        assert!(
            root.join(file).is_file(),
            "LONG_FUNCTIONS lists {key}, whose file does not exist"
        );
    }
}

/// The counter sees through braces in literals, comments and signatures,
/// skips declarations without a body and test items.
#[test]
fn the_function_counter_reads_bodies_not_text() {
    let text = "trait T { fn declared(&self) -> u8; }\n\
                fn short(x: impl Fn(u8) -> u8) -> Vec<u8>\n\
                where\n    u8: Copy,\n{\n    let s = \"}\"; // }\n    let c = '{';\n    vec![x(1)]\n}\n\
                #[cfg(test)]\nmod tests { fn hidden() {\n}\n}\n\
                fn one() { let f: fn(u8) = |_| {}; }\n";
    let source = Source::parse(Path::new("src/x.rs"), text);
    let found = functions(&source);
    let shown: Vec<(&str, usize, usize)> = found
        .iter()
        .map(|f| (f.name.as_str(), f.line, f.lines))
        .collect();
    assert_eq!(shown, [("short", 2, 8), ("one", 14, 1)]);
}

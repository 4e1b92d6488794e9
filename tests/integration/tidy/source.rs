//! Just enough of Rust's lexical structure for the tidy tests: comments and
//! the insides of literals blanked out, items under `#[cfg(test)]` removed,
//! and the `crate::` / `super::` paths a file names.
//!
//! Blanking keeps every character's position (and every newline), so an
//! offset in the blanked text is a line in the file.

use std::path::{Path, PathBuf};

/// One source file as the tidy tests see it.
pub struct Source {
    /// The file as written.
    pub text: Vec<char>,
    /// The file with comments, literals and `#[cfg(test)]` items blanked.
    pub code: Vec<char>,
    /// Files declared by `#[cfg(test)] mod x;` here (test code, exempt).
    pub test_files: Vec<PathBuf>,
}

/// A path into another part of the crate.
#[derive(Debug, PartialEq)]
pub struct Import {
    pub line: usize,
    /// The top-level module it names (`plan` for `crate::plan::tags`).
    pub module: String,
}

pub fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Source {
    /// Reads `path`, blanking comments, literals and test items.
    pub fn read(path: &Path) -> Source {
        let raw = std::fs::read_to_string(path).expect("read source");
        Source::parse(path, &raw)
    }

    pub fn parse(path: &Path, raw: &str) -> Source {
        let text: Vec<char> = raw.chars().collect();
        let mut code = blank_comments_and_literals(&text);
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut test_files = Vec::new();
        if find_all(&code, "#![cfg(test)]").next().is_some() {
            code.iter_mut()
                .filter(|c| **c != '\n')
                .for_each(|c| *c = ' ');
        }
        loop {
            let Some(at) = find_all(&code, "#[cfg(test)]").next() else {
                break;
            };
            blank_test_item(&text, &mut code, at, dir, path, &mut test_files);
        }
        Source {
            text,
            code,
            test_files,
        }
    }

    /// The 1-based line of a position.
    pub fn line_of(&self, at: usize) -> usize {
        1 + self.code[..at].iter().filter(|c| **c == '\n').count()
    }

    /// The source line `line`, trimmed (for messages).
    pub fn line_text(&self, line: usize) -> String {
        let s: String = self.text.iter().collect();
        s.lines().nth(line - 1).unwrap_or("").trim().to_string()
    }

    /// Lines where `word` occurs in the code (not in comments, literals or
    /// test items), bounded so `fs` does not match `fsync`.
    pub fn uses(&self, word: &str) -> Vec<usize> {
        let w: Vec<char> = word.chars().collect();
        find_all(&self.code, word)
            .filter(|&at| at == 0 || !is_ident(self.code[at - 1]) || !is_ident(w[0]))
            .filter(|&at| {
                let end = at + w.len();
                end >= self.code.len() || !is_ident(self.code[end]) || !is_ident(w[w.len() - 1])
            })
            .map(|at| self.line_of(at))
            .collect()
    }

    /// Every `crate::X` and every `super::` that climbs out of the file's
    /// top-level module, given the file's module path (`["plan", "diff"]`
    /// for `src/plan/diff.rs`).
    pub fn imports(&self, module_path: &[String]) -> Vec<Import> {
        let inline = inline_modules(&self.code);
        let mut out = Vec::new();
        for at in find_all(&self.code, "crate::") {
            if at > 0 && (is_ident(self.code[at - 1]) || self.code[at - 1] == '$') {
                continue;
            }
            for module in first_segments(&self.code, at + "crate::".len()) {
                out.push(Import {
                    line: self.line_of(at),
                    module,
                });
            }
        }
        for at in find_all(&self.code, "super::") {
            if at > 0 && is_ident(self.code[at - 1])
                || at > 1 && self.code[at - 2..at] == [':', ':']
            {
                continue;
            }
            let mut depth = module_path.len();
            depth += inline.iter().filter(|(s, e)| *s < at && at < *e).count();
            let mut next = at;
            while starts_with(&self.code, next, "super::") {
                depth = depth.saturating_sub(1);
                next += "super::".len();
            }
            if depth == 0 {
                for module in first_segments(&self.code, next) {
                    out.push(Import {
                        line: self.line_of(at),
                        module,
                    });
                }
            }
        }
        out.sort_by_key(|i| i.line);
        out
    }
}

fn starts_with(code: &[char], at: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(i, c)| code.get(at + i) == Some(&c))
}

pub fn find_all<'a>(code: &'a [char], s: &'a str) -> impl Iterator<Item = usize> + 'a {
    (0..code.len()).filter(move |&at| starts_with(code, at, s))
}

pub fn skip_ws(code: &[char], mut at: usize) -> usize {
    while at < code.len() && code[at].is_whitespace() {
        at += 1;
    }
    at
}

pub fn ident_at(code: &[char], at: usize) -> String {
    code[at..].iter().take_while(|c| is_ident(**c)).collect()
}

/// The first segment after a `crate::`: one name, or each item's first
/// name in a `{a, b::c}` group.
fn first_segments(code: &[char], at: usize) -> Vec<String> {
    let at = skip_ws(code, at);
    if code.get(at) != Some(&'{') {
        return vec![ident_at(code, at)];
    }
    let (mut out, mut depth, mut item_start) = (Vec::new(), 0, true);
    for (i, &c) in code.iter().enumerate().skip(at) {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => break,
            '}' => depth -= 1,
            ',' if depth == 1 => item_start = true,
            c if depth == 1 && item_start && is_ident(c) => {
                out.push(ident_at(code, i));
                item_start = false;
            }
            _ => {}
        }
    }
    out
}

/// Where the braces opened at `open` close (the position after `}`).
fn matching_brace(code: &[char], open: usize) -> usize {
    let mut depth = 0;
    for (i, &c) in code.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// Spans of inline `mod x { ... }` blocks (for `super::`).
fn inline_modules(code: &[char]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for at in find_all(code, "mod ") {
        if at > 0 && is_ident(code[at - 1]) {
            continue;
        }
        let name = skip_ws(code, at + 4);
        let after = skip_ws(code, name + ident_at(code, name).len());
        if code.get(after) == Some(&'{') {
            out.push((after, matching_brace(code, after)));
        }
    }
    out
}

/// Blanks the `#[cfg(test)]` at `at` and the item it applies to (through
/// its `;` or its closing brace); a `mod x;` records the file it names.
fn blank_test_item(
    text: &[char],
    code: &mut [char],
    at: usize,
    dir: &Path,
    file: &Path,
    test_files: &mut Vec<PathBuf>,
) {
    let mut i = at + "#[cfg(test)]".len();
    let mut path_attr = None;
    loop {
        i = skip_ws(code, i);
        if !starts_with(code, i, "#[") {
            break;
        }
        let close = i + code[i..].iter().position(|c| *c == ']').unwrap_or(0);
        if starts_with(code, i, "#[path") {
            let q = i + code[i..close].iter().position(|c| *c == '"').expect("path");
            let lit: String = text[q + 1..].iter().take_while(|c| **c != '"').collect();
            path_attr = Some(lit);
        }
        i = close + 1;
    }
    let mut words = Vec::new();
    let mut end = i;
    while end < code.len() {
        match code[end] {
            ';' => {
                end += 1;
                break;
            }
            '{' => {
                end = matching_brace(code, end);
                break;
            }
            c if is_ident(c) && (end == 0 || !is_ident(code[end - 1])) => {
                words.push(ident_at(code, end));
                end += 1;
            }
            _ => end += 1,
        }
    }
    if code[end - 1] == ';' && words.iter().any(|w| w == "mod") {
        let name = words.last().expect("module name");
        test_files.push(match path_attr {
            Some(p) => dir.join(p),
            None => module_dir(file).join(name),
        });
    }
    code[at..end]
        .iter_mut()
        .filter(|c| **c != '\n')
        .for_each(|c| *c = ' ');
}

/// The directory a file's `mod x;` children live in.
pub fn module_dir(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new(""));
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("mod" | "lib" | "main") => dir.to_path_buf(),
        Some(stem) => dir.join(stem),
        None => dir.to_path_buf(),
    }
}

/// Comments become spaces; string and char literals keep their quotes and
/// lose their insides. Newlines stay.
fn blank_comments_and_literals(text: &[char]) -> Vec<char> {
    let mut code = text.to_vec();
    let blank = |code: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut code[from..to.min(text.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let mut i = 0;
    while i < text.len() {
        let prev_ident = i > 0 && is_ident(text[i - 1]);
        let end = if starts_with(text, i, "//") {
            let len = text[i..].iter().position(|c| *c == '\n');
            let end = i + len.unwrap_or(text.len() - i);
            blank(&mut code, i, end);
            end
        } else if starts_with(text, i, "/*") {
            let end = block_comment_end(text, i);
            blank(&mut code, i, end);
            end
        } else if text[i] == '"' {
            let end = string_end(text, i + 1);
            blank(&mut code, i + 1, end - 1);
            end
        } else if !prev_ident && (text[i] == 'r' || starts_with(text, i, "br")) {
            let r = if text[i] == 'b' { i + 1 } else { i };
            let hashes = text[r + 1..].iter().take_while(|c| **c == '#').count();
            if text.get(r + 1 + hashes) == Some(&'"') {
                let open = r + 2 + hashes;
                let close: String = std::iter::once('"')
                    .chain("#".repeat(hashes).chars())
                    .collect();
                let len = find_all(&text[open..], &close)
                    .next()
                    .unwrap_or(text.len() - open);
                blank(&mut code, open, open + len);
                open + len + close.len()
            } else {
                i + 1
            }
        } else if text[i] == '\'' {
            char_literal_end(text, i)
                .inspect(|&end| blank(&mut code, i + 1, end - 1))
                .unwrap_or(i + 1)
        } else {
            i + 1
        };
        i = end;
    }
    code
}

fn block_comment_end(text: &[char], from: usize) -> usize {
    let (mut depth, mut i) = (0, from);
    while i < text.len() {
        if starts_with(text, i, "/*") {
            depth += 1;
            i += 2;
        } else if starts_with(text, i, "*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    text.len()
}

/// The position after the closing quote of a string whose body starts at
/// `from`.
fn string_end(text: &[char], mut from: usize) -> usize {
    while from < text.len() {
        match text[from] {
            '\\' => from += 2,
            '"' => return from + 1,
            _ => from += 1,
        }
    }
    text.len()
}

/// `'x'` or `'\n'` (a char literal), not `'a` (a lifetime).
fn char_literal_end(text: &[char], at: usize) -> Option<usize> {
    if text.get(at + 1) == Some(&'\\') {
        let len = text[at + 2..].iter().position(|c| *c == '\'')?;
        return Some(at + 3 + len);
    }
    (text.get(at + 2) == Some(&'\'')).then_some(at + 3)
}

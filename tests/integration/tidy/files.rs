//! Which file of `src/` each path names: every `use` (groups flattened),
//! every `crate::`, `super::` and `self::` path in the code, and every path
//! through a module a `use` brought into scope (`mc::find_run` after `use
//! …::copy as mc`), resolved to the deepest file that exists and then
//! through `pub use` re-exports to the file that defines the item. A file
//! naming its own submodules is the module tree, not an import: those
//! edges are left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::source::{Source, find_all, ident_at, is_ident, skip_ws};

/// A module path (`["registry", "mlflow", "lease"]`).
pub type ModPath = Vec<String>;

/// One path a file names, resolved.
#[derive(Debug, Clone)]
pub struct Named {
    pub line: usize,
    /// The absolute path as written (crate-relative), before re-exports.
    pub path: ModPath,
    /// The file that defines what it names.
    pub file: PathBuf,
}

/// Every non-test file of the crate by module path, parsed.
pub struct Crate {
    files: BTreeMap<ModPath, (PathBuf, Source)>,
    /// Each file's `pub use`s.
    reexports: BTreeMap<ModPath, Vec<Use>>,
}

/// One flattened `use`: its position, whether it re-exports, the path and
/// the name it binds (`*` for a glob).
struct Use {
    at: usize,
    public: bool,
    path: Vec<String>,
    name: String,
}

impl Crate {
    /// `files`: (file, module path, parsed source); `lib.rs` is `[]`.
    pub fn new(files: Vec<(PathBuf, ModPath, Source)>) -> Crate {
        let files: BTreeMap<ModPath, (PathBuf, Source)> =
            files.into_iter().map(|(f, m, s)| (m, (f, s))).collect();
        let reexports = files
            .iter()
            .map(|(m, (_, s))| {
                (
                    m.clone(),
                    uses(&s.code).into_iter().filter(|u| u.public).collect(),
                )
            })
            .collect();
        Crate { files, reexports }
    }

    /// Every file with its module path.
    pub fn files(&self) -> impl Iterator<Item = (&ModPath, &Path)> {
        self.files.iter().map(|(m, (f, _))| (m, f.as_path()))
    }

    /// The file a module path lives in (the deepest existing prefix) and
    /// what is left of the path.
    fn locate<'p>(&self, path: &'p [String]) -> (&ModPath, &'p [String]) {
        let mut n = path.len();
        loop {
            if let Some((m, _)) = self.files.get_key_value(&path[..n]) {
                return (m, &path[n..]);
            }
            n -= 1;
        }
    }

    /// The module path `segs` names from module `base` (`crate::`,
    /// `super::`, `self::`, or a child of `base`); `None` for another
    /// crate's path or a local name.
    fn absolute(&self, base: &[String], segs: &[String]) -> Option<ModPath> {
        let first = segs.first()?;
        match first.as_str() {
            "crate" => Some(segs[1..].to_vec()),
            "self" => Some([base, &segs[1..]].concat()),
            "super" => {
                let ups = segs.iter().take_while(|s| *s == "super").count();
                let keep = base.len().checked_sub(ups)?;
                Some([&base[..keep], &segs[ups..]].concat())
            }
            _ => {
                let child = [base, &segs[..1]].concat();
                self.files
                    .contains_key(&child)
                    .then(|| [base, segs].concat())
            }
        }
    }

    /// The file that defines what `path` names, following `pub use`
    /// re-exports (a few levels).
    fn defining_file(&self, path: &[String], depth: usize) -> PathBuf {
        let (module, rest) = self.locate(path);
        let (file, _) = &self.files[module];
        if depth < 4
            && let Some(name) = rest.first()
        {
            for u in &self.reexports[module] {
                if u.name == *name
                    && let Some(abs) = self.absolute(module, &u.path)
                {
                    let further = [abs.as_slice(), &rest[1..]].concat();
                    return self.defining_file(&further, depth + 1);
                }
            }
        }
        file.clone()
    }

    /// Every path file `module` names, resolved.
    pub fn named_by(&self, module: &ModPath) -> Vec<Named> {
        let (_, source) = &self.files[module];
        let code = &source.code;
        let mut found: Vec<(usize, ModPath)> = Vec::new();
        let mut aliases: BTreeMap<String, ModPath> = BTreeMap::new();
        for u in uses(code) {
            let base = base_at(module, code, u.at);
            if let Some(abs) = self.absolute(&base, &u.path) {
                if self.files.contains_key(&abs) && u.name != "*" {
                    aliases.insert(u.name.clone(), abs.clone());
                }
                found.push((u.at, abs));
            }
        }
        for start in ["crate::", "super::", "self::"] {
            for at in find_all(code, start) {
                if at > 0 && (is_ident(code[at - 1]) || code[at - 1] == ':' || code[at - 1] == '$')
                {
                    continue;
                }
                let base = base_at(module, code, at);
                if let Some(abs) = self.absolute(&base, &segments(code, at)) {
                    found.push((at, abs));
                }
            }
        }
        for (alias, target) in &aliases {
            let pattern = format!("{alias}::");
            for at in find_all(code, &pattern) {
                if at > 0 && (is_ident(code[at - 1]) || code[at - 1] == ':') {
                    continue;
                }
                let segs = segments(code, at);
                found.push((at, [target.as_slice(), &segs[1..]].concat()));
            }
        }
        found
            .into_iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(at, path)| Named {
                line: source.line_of(at),
                file: self.defining_file(&path, 0),
                path,
            })
            .collect()
    }

    /// The module path of `file`, when it is one of the crate's.
    pub fn module_of(&self, file: &Path) -> Option<&ModPath> {
        self.files
            .iter()
            .find(|(_, (f, _))| f == file)
            .map(|(m, _)| m)
    }

    /// The trimmed source line of `module`'s file (for messages).
    pub fn line_text(&self, module: &ModPath, line: usize) -> String {
        self.files[module].1.line_text(line)
    }
}

/// `module` plus the inline `mod x { … }` blocks `at` is inside.
fn base_at(module: &[String], code: &[char], at: usize) -> ModPath {
    let mut base = module.to_vec();
    for (name, open, close) in inline_modules(code) {
        if open < at && at < close {
            base.push(name);
        }
    }
    base
}

/// Inline `mod x { … }` blocks: name, opening and closing brace.
fn inline_modules(code: &[char]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for at in find_all(code, "mod ") {
        if at > 0 && is_ident(code[at - 1]) {
            continue;
        }
        let name_at = skip_ws(code, at + 4);
        let name = ident_at(code, name_at);
        let after = skip_ws(code, name_at + name.len());
        if code.get(after) == Some(&'{') {
            let mut depth = 0;
            let mut close = code.len();
            for (i, &c) in code.iter().enumerate().skip(after) {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            close = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            out.push((name, after, close));
        }
    }
    out
}

/// `a::b::c` starting at `at`: its segments (generic arguments and what
/// follows the last segment left out).
fn segments(code: &[char], mut at: usize) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        at = skip_ws(code, at);
        let id = ident_at(code, at);
        if id.is_empty() {
            break;
        }
        at += id.len();
        out.push(id);
        let next = skip_ws(code, at);
        if code.get(next) == Some(&':') && code.get(next + 1) == Some(&':') {
            at = next + 2;
        } else {
            break;
        }
    }
    out
}

/// Every `use` statement of the code, flattened.
fn uses(code: &[char]) -> Vec<Use> {
    let mut out = Vec::new();
    for at in find_all(code, "use ") {
        if at > 0 && is_ident(code[at - 1]) {
            continue;
        }
        let Some(len) = code[at..].iter().position(|c| *c == ';') else {
            continue;
        };
        let statement: String = code[at + 4..at + len].iter().collect();
        let public = is_public(code, at);
        let tokens = tokenize(&statement);
        let mut flat = Vec::new();
        tree(&tokens, &mut 0, &[], &mut flat);
        out.extend(flat.into_iter().map(|(path, name)| Use {
            at,
            public,
            path,
            name,
        }));
    }
    out
}

/// `pub use`, `pub(crate) use`, `pub(super) use`.
fn is_public(code: &[char], use_at: usize) -> bool {
    let before: String = code[use_at.saturating_sub(20)..use_at].iter().collect();
    let before = before.trim_end();
    let before = match before.strip_suffix(')') {
        Some(b) => b.rsplit_once('(').map_or(b, |(p, _)| p).trim_end(),
        None => before,
    };
    before.ends_with("pub") && !before[..before.len() - 3].ends_with(|c: char| is_ident(c))
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_ident(c) {
            let id: String = chars[i..].iter().take_while(|c| is_ident(**c)).collect();
            i += id.chars().count();
            out.push(id);
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else if "{},*".contains(c) {
            out.push(c.to_string());
            i += 1;
        } else {
            i += 1;
        }
    }
    out
}

/// One use tree at `tokens[*i]` under `prefix`: (path, bound name) pairs.
fn tree(tokens: &[String], i: &mut usize, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let mut path = prefix.to_vec();
    while *i < tokens.len() {
        let t = tokens[*i].as_str();
        match t {
            "{" => {
                *i += 1;
                while *i < tokens.len() && tokens[*i] != "}" {
                    tree(tokens, i, &path, out);
                    if tokens.get(*i).map(String::as_str) == Some(",") {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                out.push((path, "*".into()));
                return;
            }
            "::" => *i += 1,
            "," | "}" => break,
            "as" => {
                let alias = tokens.get(*i + 1).cloned().unwrap_or_default();
                *i += 2;
                out.push((path, alias));
                return;
            }
            _ => {
                if t == "self" && !path.is_empty() {
                    *i += 1;
                    continue;
                }
                path.push(t.to_string());
                *i += 1;
            }
        }
    }
    if let Some(name) = path.last().cloned() {
        out.push((path, name));
    }
}

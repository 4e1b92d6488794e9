//! The documentation stays true: every relative link in the Markdown pages
//! (README.md, ARCHITECTURE.md, BENCHMARKS.md, `docs/`, `examples/`)
//! resolves to a file of the repository and every `#anchor` to a heading of
//! the page it names, by GitHub's slug rules; and `docs/cli.md` documents
//! exactly the commands and flags clap defines (`cli.rs`); and every
//! guarantee of `docs/security.md` names a test that exists (`security.rs`).

mod cli;
mod security;

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// Pages the README links to that another change adds (the lead writes
/// `docs/security.md`). Each is exempt from the link check only while it
/// does not exist: once it does, `pending_pages_are_still_missing` fails
/// and says to take it off this list.
pub(crate) const PENDING: &[&str] = &[];

/// The repository's root.
pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown pages whose links are checked: README.md, ARCHITECTURE.md,
/// BENCHMARKS.md, and every `.md` file under `docs/` and `examples/`.
pub(crate) fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "BENCHMARKS.md"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    for dir in ["docs", "examples"] {
        walk_markdown(&root.join(dir), &mut files);
    }
    files.sort();
    files
}

fn walk_markdown(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk_markdown(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// A heading of a page: its level (the number of `#`) and its text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Heading {
    pub level: usize,
    pub text: String,
    /// The 0-based line it is on.
    pub line: usize,
}

/// The page's lines with a flag for each: inside a fenced code block.
pub(crate) fn lines_with_fences(text: &str) -> Vec<(&str, bool)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => {
                fence = Some(m);
                out.push((line, true));
            }
            (Some(f), Some(m)) if f == m => {
                fence = None;
                out.push((line, true));
            }
            (f, _) => out.push((line, f.is_some())),
        }
    }
    out
}

/// The ATX headings (`## Text`) outside code blocks, with markup that does
/// not reach the slug removed (code spans' backticks, link targets).
pub(crate) fn headings(text: &str) -> Vec<Heading> {
    let mut out = Vec::new();
    for (n, (line, fenced)) in lines_with_fences(text).into_iter().enumerate() {
        let level = line.chars().take_while(|c| *c == '#').count();
        if fenced || level == 0 || level > 6 || !line[level..].starts_with(' ') {
            continue;
        }
        let raw = line[level..].trim().trim_end_matches('#').trim();
        out.push(Heading {
            level,
            text: link_texts(&raw.replace('`', "")),
            line: n,
        });
    }
    out
}

/// `[text](target)` -> `text`.
fn link_texts(s: &str) -> String {
    let mut out = s.to_string();
    while let Some((start, end, text)) = links_in(&out)
        .first()
        .map(|l| (l.start, l.end, l.text.clone()))
    {
        out.replace_range(start..end, &text);
    }
    out
}

/// GitHub's anchor for a heading: lowercase, spaces to `-`, punctuation
/// dropped (letters, digits, `-` and `_` kept).
pub(crate) fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor of a page, repeated headings numbered as GitHub does
/// (`name`, `name-1`, `name-2`).
pub(crate) fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for h in headings(text) {
        let base = slug(&h.text);
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

/// One inline link (or image) on a line: `[text](target)`.
#[derive(Debug, Clone, PartialEq)]
struct Link {
    start: usize,
    end: usize,
    text: String,
    target: String,
}

/// The inline links of one line (code spans already removed).
fn links_in(line: &str) -> Vec<Link> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = line[from..].find("](").map(|i| i + from) {
        let Some(open) = line[..i].rfind('[') else {
            from = i + 2;
            continue;
        };
        let Some(close) = line[i + 2..].find(')').map(|c| c + i + 2) else {
            break;
        };
        let target = line[i + 2..close].split_whitespace().next().unwrap_or("");
        out.push(Link {
            start: open,
            end: close + 1,
            text: line[open + 1..i].to_string(),
            target: target.trim_matches(['<', '>']).to_string(),
        });
        from = close + 1;
    }
    out
}

/// A line without its code spans (`` `…` ``, ``` ``…`` ```).
fn strip_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('`') {
        out.push_str(&rest[..i]);
        let ticks = rest[i..].chars().take_while(|c| *c == '`').count();
        let after = &rest[i + ticks..];
        match after.find(&"`".repeat(ticks)) {
            Some(j) => rest = &after[j + ticks..],
            None => {
                out.push_str(&rest[i..]);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every link target of a page with its 1-based line: inline links and
/// images outside code, and reference definitions (`[name]: target`).
pub(crate) fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, (line, fenced)) in lines_with_fences(text).into_iter().enumerate() {
        if fenced {
            continue;
        }
        let line = strip_code_spans(line);
        if let Some(def) = reference_definition(&line) {
            out.push((n + 1, def));
        }
        out.extend(links_in(&line).into_iter().map(|l| (n + 1, l.target)));
    }
    out
}

fn reference_definition(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (label, target) = rest.split_once("]:")?;
    (!label.is_empty() && !label.starts_with('^'))
        .then(|| target.split_whitespace().next().unwrap_or("").to_string())
}

/// `dir/../a/./b` -> `a/b`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The problems of one link of `page` (a path relative to `root`).
fn check_link(root: &Path, page: &Path, target: &str) -> Option<String> {
    if target.is_empty() {
        return Some("an empty link".into());
    }
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let file = if path.is_empty() {
        page.to_path_buf()
    } else {
        normalize(&page.parent().unwrap_or(Path::new("")).join(path))
    };
    let shown = file.display().to_string();
    if PENDING.contains(&shown.as_str()) && anchor.is_none() && !root.join(&file).exists() {
        return None;
    }
    if file.starts_with("..") || !root.join(&file).exists() {
        return Some(format!("links to {target}, but {shown} does not exist"));
    }
    let anchor = anchor?;
    let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
        return Some(format!(
            "links to {target}, but {shown} is not a readable page"
        ));
    };
    (!anchors(&text).contains(anchor))
        .then(|| format!("links to {target}, but {shown} has no heading with anchor #{anchor}"))
}

/// Every broken link of the given pages, as `page:line: problem`.
pub(crate) fn broken_links(root: &Path, pages: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for file in pages {
        let page = file.strip_prefix(root).unwrap_or(file);
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (line, target) in link_targets(&text) {
            if let Some(p) = check_link(root, page, &target) {
                problems.push(format!("{}:{line}: {p}", page.display()));
            }
        }
    }
    problems
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let problems = broken_links(root(), &markdown_files(root()));
    assert!(
        problems.is_empty(),
        "broken links (a path is relative to the page; an anchor is the heading \
         lowercased, spaces as -, punctuation dropped):\n{}",
        problems.join("\n")
    );
}

#[test]
fn pending_pages_are_still_missing() {
    for page in PENDING {
        assert!(
            !root().join(page).exists(),
            "{page} exists now: take it off PENDING in tests/integration/docs.rs, so links to it are checked"
        );
    }
}

#[test]
fn the_link_check_finds_a_missing_page_a_missing_anchor_and_nothing_in_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir(root.join("pages")).expect("mkdir");
    std::fs::write(
        root.join("pages/a.md"),
        "# A page\n\n## MLflow's own webhooks (≥ 3.3)\n",
    )
    .expect("write");
    let readme = "\
# Title
[ok](pages/a.md#mlflows-own-webhooks--33) [self](#title) [web](https://example.com/x)
[gone](pages/b.md) and ![img](pages/a.md#nope)
`[code](pages/c.md)`
```
[fenced](pages/d.md)
```
[ref]: pages/e.md
";
    std::fs::write(root.join("README.md"), readme).expect("write");
    let problems = broken_links(root, &[root.join("README.md")]);
    assert_eq!(
        problems,
        [
            "README.md:3: links to pages/b.md, but pages/b.md does not exist",
            "README.md:3: links to pages/a.md#nope, but pages/a.md has no heading with anchor #nope",
            "README.md:8: links to pages/e.md, but pages/e.md does not exist",
        ]
    );
}

#[test]
fn anchors_follow_githubs_slugs() {
    let page = "\
# `kind: Prompt`
## Workspaces (MLflow ≥ 3.10, `mlflow server --enable-workspaces`)
## Copying from another registry (`from:`)
## [Linked](x.md) heading
## Notes
## Notes
```
# not a heading
```
";
    let want = [
        "kind-prompt",
        "workspaces-mlflow--310-mlflow-server---enable-workspaces",
        "copying-from-another-registry-from",
        "linked-heading",
        "notes",
        "notes-1",
    ];
    assert_eq!(anchors(page), want.iter().map(|s| s.to_string()).collect());
}

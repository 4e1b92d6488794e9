//! `docs/cli.md` against clap (`modelsync::cli::Cli`, defined in
//! `src/cli/args.rs`): every command has a section headed `modelsync
//! COMMAND`, each section names every long flag (and environment variable)
//! clap defines for that command, and no `--flag` on the page is one clap
//! does not define where the page names it.

use std::collections::{BTreeMap, BTreeSet};

use clap::CommandFactory;

use super::{Heading, headings, root};

/// What clap defines for one command (or, with an empty path, the global
/// flags).
#[derive(Debug, Default)]
struct Defined {
    /// Long flags that must be documented (long names and visible aliases)
    /// with their help text.
    documented: BTreeMap<String, String>,
    /// Every long name the command accepts (hidden aliases too).
    accepted: BTreeSet<String>,
    /// Environment variables its flags read.
    env: BTreeSet<String>,
}

fn defined(cmd: &clap::Command) -> Defined {
    let mut d = Defined::default();
    for arg in cmd.get_arguments().filter(|a| a.get_long().is_some()) {
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        for long in arg.get_long_and_visible_aliases().unwrap_or_default() {
            if !arg.is_hide_set() {
                d.documented.insert(long.to_string(), help.clone());
            }
            d.accepted.insert(long.to_string());
        }
        for alias in arg.get_all_aliases().unwrap_or_default() {
            d.accepted.insert(alias.to_string());
        }
        if let Some(env) = arg.get_env() {
            d.env.insert(env.to_string_lossy().into_owned());
        }
    }
    d
}

/// Every command by its path (`"watch"`, `"lease show"`), and `""` for the
/// global flags.
fn commands() -> BTreeMap<String, Defined> {
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut BTreeMap<String, Defined>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let path = format!("{prefix}{}", sub.get_name());
            out.insert(path.clone(), defined(sub));
            walk(sub, &format!("{path} "), out);
        }
    }
    let root = modelsync::cli::Cli::command();
    let mut out = BTreeMap::from([(String::new(), defined(&root))]);
    walk(&root, "", &mut out);
    out
}

/// A section of the page that belongs to a command (`"watch"`) or to the
/// global flags (`""`): its 0-based line range, nested sections included.
#[derive(Debug)]
struct Section {
    owner: String,
    heading: Heading,
    lines: std::ops::Range<usize>,
}

fn sections(text: &str) -> Vec<Section> {
    let hs = headings(text);
    let total = text.lines().count();
    let mut out = Vec::new();
    for (i, h) in hs.iter().enumerate() {
        let owner = match h.text.strip_prefix("modelsync ") {
            Some(path) => path.trim().to_string(),
            None if h.text.eq_ignore_ascii_case("global flags") => String::new(),
            None => continue,
        };
        let end = hs[i + 1..]
            .iter()
            .find(|next| next.level <= h.level)
            .map_or(total, |next| next.line);
        out.push(Section {
            owner,
            heading: h.clone(),
            lines: h.line..end,
        });
    }
    out
}

/// The `--flag` names on a line, each with the word before it when that
/// word is written right before the flag (`apply --plan`: `"apply"`).
fn flags_on(line: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    for (i, _) in line.match_indices("--") {
        let before = line[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '-') {
            continue;
        }
        let name: String = line[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        let name = name.trim_end_matches('-');
        if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            let word = line[..i]
                .strip_suffix(' ')
                .and_then(|l| l.rsplit([' ', '`', '(']).next())
                .filter(|w| !w.is_empty())
                .map(str::to_string);
            out.push((word, name.to_string()));
        }
    }
    out
}

/// What is missing from or wrong on the page, each problem saying what to
/// change.
fn problems(page: &str, defined: &BTreeMap<String, Defined>) -> Vec<String> {
    let lines: Vec<&str> = page.lines().collect();
    let secs = sections(page);
    let mut out = Vec::new();
    for (path, d) in defined {
        missing_from_section(path, d, &secs, &lines, &mut out);
        for env in &d.env {
            if !page.contains(env.as_str()) {
                out.push(format!("docs/cli.md does not name {env}, which a flag of `modelsync {path}` reads: add it to the Environment table"));
            }
        }
    }
    for s in &secs {
        if !defined.contains_key(&s.owner) {
            out.push(format!(
                "docs/cli.md:{}: a section for `{}`, a command clap does not define: remove it",
                s.heading.line + 1,
                s.heading.text
            ));
        }
    }
    undefined_flags(&lines, &secs, defined, &mut out);
    out
}

fn missing_from_section(
    path: &str,
    d: &Defined,
    secs: &[Section],
    lines: &[&str],
    out: &mut Vec<String>,
) {
    let title = if path.is_empty() {
        "Global flags".to_string()
    } else {
        format!("modelsync {path}")
    };
    let Some(s) = secs.iter().find(|s| s.owner == path) else {
        let how = if path.contains(' ') {
            "`###`, under its parent command's section,"
        } else {
            "`##`"
        };
        out.push(format!(
            "docs/cli.md has no section `{title}`: add a heading {how} `{title}` with its flags"
        ));
        return;
    };
    let named: BTreeSet<String> = lines[s.lines.clone()]
        .iter()
        .flat_map(|l| flags_on(l).into_iter().map(|(_, flag)| flag))
        .collect();
    for (flag, help) in &d.documented {
        if !named.contains(flag) {
            out.push(format!(
                "docs/cli.md, section `{title}`, does not mention --{flag}, which clap defines (\"{help}\"): add it to that section's flag table"
            ));
        }
    }
}

/// Flags the page names where clap does not define them: right after a
/// command's name (`apply --plan`), that command's or a global flag; else
/// in a command's section (its innermost), that command's or a global
/// flag; elsewhere, any command's.
fn undefined_flags(
    lines: &[&str],
    secs: &[Section],
    defined: &BTreeMap<String, Defined>,
    out: &mut Vec<String>,
) {
    let anywhere: BTreeSet<String> = defined.values().flat_map(|d| d.accepted.clone()).collect();
    let of = |command: &str, flag: &String| {
        defined[command].accepted.contains(flag) || defined[""].accepted.contains(flag)
    };
    for (n, line) in lines.iter().enumerate() {
        let owner = secs
            .iter()
            .filter(|s| s.lines.contains(&n))
            .max_by_key(|s| s.heading.line)
            .map(|s| s.owner.as_str())
            .filter(|o| defined.contains_key(*o));
        for (word, flag) in flags_on(line) {
            let command = word.filter(|w| !w.is_empty() && defined.contains_key(w));
            let (ok, place) = match (command.as_deref(), owner) {
                (Some(c), _) | (None, Some(c)) => (of(c, &flag), format!("`modelsync {c}`")),
                (None, None) => (anywhere.contains(&flag), "any command".to_string()),
            };
            if !ok && flag != "help" && flag != "version" {
                out.push(format!(
                    "docs/cli.md:{}: --{flag} is not a flag clap defines for {place} (src/cli/args.rs): remove it or correct its name",
                    n + 1
                ));
            }
        }
    }
}

#[test]
fn the_cli_reference_names_every_command_and_flag_clap_defines_and_no_other() {
    let page = std::fs::read_to_string(root().join("docs/cli.md")).expect("docs/cli.md");
    let found = problems(&page, &commands());
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_cli_check_reports_a_missing_section_flag_and_a_stray_one() {
    let page = "\
# Command line
## Global flags
`--registry`, `--workspace`, `--verbose`, `--quiet`, `--log-format`, `--color`
## `modelsync plan`
`--format`, `--out`, `--detailed-exitcode`, `--prune`, `--protect`, `--once`
for `apply --plan`; not `apply --out`; `--model`, `--changed-since`
## Other
`--concurrency` `--no-such-flag`
";
    let all = commands();
    let defined: BTreeMap<String, Defined> = all
        .into_iter()
        .filter(|(k, _)| k.is_empty() || k == "plan" || k == "apply")
        .collect();
    let found = problems(page, &defined);
    let has = |s: &str| found.iter().any(|p| p.contains(s));
    assert!(
        has("section `modelsync plan`, does not mention --revision"),
        "{found:#?}"
    );
    assert!(has("no section `modelsync apply`"), "{found:#?}");
    assert!(
        has("docs/cli.md:5: --once is not a flag clap defines for `modelsync plan`"),
        "{found:#?}"
    );
    assert!(
        has("docs/cli.md:8: --no-such-flag is not a flag"),
        "{found:#?}"
    );
    assert!(has("MODELSYNC_CONCURRENCY"), "{found:#?}");
    assert!(
        has("docs/cli.md:6: --out is not a flag clap defines for `modelsync apply`"),
        "{found:#?}"
    );
    assert!(
        !has("--concurrency is not") && !has("--plan is not"),
        "{found:#?}"
    );
    assert_eq!(found.len(), 6, "{found:#?}");
}

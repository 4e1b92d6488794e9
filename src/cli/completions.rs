//! `modelsync completions SHELL` and `modelsync man`: shell completions
//! (clap_complete) and man pages (clap_mangen), both generated from the
//! clap definitions in `args.rs`, so they never disagree with `--help`.

use anyhow::Context;
use clap::CommandFactory;

use super::Exit;
use super::args::{Cli, ManArgs};
use super::common::print;

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<Exit> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "modelsync", &mut out);
    print(&String::from_utf8(out)?)?;
    Ok(Exit::Ok)
}

/// Prints `modelsync.1`, or with `--out-dir` writes it and one
/// `modelsync-COMMAND.1` per command (`modelsync-lease-show.1` for nested
/// ones), as git's pages are split.
pub fn man(a: ManArgs) -> anyhow::Result<Exit> {
    let cmd = Cli::command();
    let Some(dir) = a.out_dir else {
        print(&String::from_utf8(render(cmd)?)?)?;
        return Ok(Exit::Ok);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pages = vec![("modelsync".to_string(), cmd.clone())];
    collect(&cmd, "modelsync", &mut pages);
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, render(page)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(Exit::Ok)
}

/// Every subcommand (but `help`), named `parent-sub`.
fn collect(cmd: &clap::Command, prefix: &str, pages: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("{prefix}-{}", sub.get_name());
        let bin = name.replace('-', " ");
        let page = sub.clone().name(name.clone()).bin_name(bin);
        collect(sub, &name, pages);
        pages.push((name, page));
    }
}

fn render(cmd: clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(out)
}

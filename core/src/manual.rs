//! Man pages and shell completions, generated from a binary's own clap definition so they never
//! drift from its flags: `vrs-node completions bash`, `vrs-node man --out DIR` (hidden: the
//! package build runs it), and the same for `vrs-coordinator`.
//!
//! A binary flattens [`ManualCommand`] into its subcommands and hands the parsed command and its
//! full `clap::Command` to [`run`].

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
pub use clap_complete::Shell;

use crate::cli::IoError;

/// The subcommands every binary has for its own documentation.
#[derive(Debug, Clone, Subcommand)]
pub enum ManualCommand {
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write a man page (section 1) for the command and each of its subcommands.
    #[command(hide = true)]
    Man {
        /// Directory to write the pages into (created if needed).
        #[arg(long)]
        out: PathBuf,
    },
}

/// A binary's own subcommands `C`, followed by the [`ManualCommand`]s: what both binaries'
/// `main.rs` parse.
#[derive(Debug, Subcommand)]
pub enum WithManual<C: Subcommand> {
    /// One of the binary's own commands.
    #[command(flatten)]
    Own(C),
    /// `completions` or `man`.
    #[command(flatten)]
    Manual(ManualCommand),
}

/// The binary's own command, or `None` once a [`ManualCommand`] was run for `cmd` (the
/// binary's full definition).
pub fn own_or_run<C: Subcommand>(
    command: WithManual<C>,
    cmd: clap::Command,
) -> Result<Option<C>, IoError> {
    match command {
        WithManual::Own(c) => Ok(Some(c)),
        WithManual::Manual(action) => run(&action, cmd).map(|()| None),
    }
}

/// Runs a [`ManualCommand`] for the binary whose full definition is `cmd`.
pub fn run(action: &ManualCommand, cmd: clap::Command) -> Result<(), IoError> {
    match action {
        ManualCommand::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            completions(cmd, *shell, &mut out)
                .and_then(|()| out.flush())
                .map_err(IoError::doing("write the completion script"))
        }
        ManualCommand::Man { out } => {
            let pages = man_pages(cmd, out)?;
            for page in pages {
                println!("{}", page.display());
            }
            Ok(())
        }
    }
}

/// Writes the completion script for `shell` to `out`.
pub fn completions(
    mut cmd: clap::Command,
    shell: Shell,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    // clap_complete writes through its own buffer and reports no error; render into memory and
    // write once so a closed pipe is an error here.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    out.write_all(&script)
}

/// Writes `NAME.1` and `NAME-SUB[-SUB…].1` for every visible subcommand into `dir`; returns the
/// pages written, the command's own first. The pages carry no date, so a build is reproducible.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>, IoError> {
    std::fs::create_dir_all(dir).map_err(IoError::doing(format!("create {}", dir.display())))?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    write_pages(&cmd, dir, &mut pages)?;
    Ok(pages)
}

fn write_pages(cmd: &clap::Command, dir: &Path, pages: &mut Vec<PathBuf>) -> Result<(), IoError> {
    let man = clap_mangen::Man::new(cmd.clone()).manual("VRS Federation");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)
        .and_then(|()| std::fs::write(&path, &page))
        .map_err(IoError::doing(format!("write {}", path.display())))?;
    pages.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, pages)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// A small binary with a nested subcommand and a hidden one.
    #[derive(Debug, Parser)]
    #[command(name = "demo", version, about = "A demo binary")]
    struct Demo {
        #[command(subcommand)]
        command: DemoCommand,
    }

    #[derive(Debug, Subcommand)]
    enum DemoCommand {
        /// Make a node.
        Init {
            /// Where.
            #[arg(long)]
            dir: PathBuf,
        },
        /// Read the log.
        Audit {
            #[command(subcommand)]
            action: AuditAction,
        },
        #[command(flatten)]
        Manual(ManualCommand),
    }

    #[derive(Debug, Subcommand)]
    enum AuditAction {
        /// Check the chain.
        Verify,
    }

    #[test]
    fn a_page_per_visible_command_and_none_for_hidden_ones() {
        let dir = tempfile::tempdir().unwrap();
        let pages = man_pages(Demo::command(), dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "demo.1",
                "demo-init.1",
                "demo-audit.1",
                "demo-audit-verify.1",
                "demo-completions.1"
            ]
        );
        let init = std::fs::read_to_string(dir.path().join("demo-init.1")).unwrap();
        assert!(init.contains("\\-\\-dir"), "{init}");
        assert!(init.contains("Make a node"), "{init}");
        // The same definition gives the same bytes (no date in the page).
        let again = tempfile::tempdir().unwrap();
        man_pages(Demo::command(), again.path()).unwrap();
        assert_eq!(
            std::fs::read(again.path().join("demo-init.1")).unwrap(),
            init.into_bytes()
        );
    }

    #[test]
    fn completions_name_every_subcommand_and_flag() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(Demo::command(), shell, &mut out).unwrap();
            let script = String::from_utf8(out).unwrap();
            for word in ["init", "audit", "verify", "dir"] {
                assert!(script.contains(word), "{shell}: no {word} in\n{script}");
            }
        }
    }

    #[test]
    fn the_subcommands_parse() {
        let d = Demo::try_parse_from(["demo", "completions", "zsh"]).unwrap();
        assert!(matches!(
            d.command,
            DemoCommand::Manual(ManualCommand::Completions { shell: Shell::Zsh })
        ));
        let d = Demo::try_parse_from(["demo", "man", "--out", "x"]).unwrap();
        assert!(matches!(
            d.command,
            DemoCommand::Manual(ManualCommand::Man { .. })
        ));
        assert!(Demo::try_parse_from(["demo", "completions", "tcsh"]).is_err());
    }
}

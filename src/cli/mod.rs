//! The command line: a thin clap layer over the library.
//!
//! Arguments parse into one [`Command`]; [`execute`] runs it. Exit codes: 0 on
//! success, 2 when a spec (or a group or representation given on the command
//! line) has errors, 1 for anything else.

mod basis;
mod build;
mod check;
mod discover;
mod explain;
mod train;

use crate::plan::ModelGraph;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::Path;

/// symc compiles a spec of a system and its symmetries into a neural network
/// that respects them.
#[derive(Debug, Parser)]
#[command(
    name = "symc",
    version,
    after_help = "Example:\n  symc build specs/o5_emlp.sym -o o5.yaml"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Every command symc knows.
#[derive(Debug, Subcommand)]
pub enum Command {
    Build(build::BuildArgs),
    Explain(explain::ExplainArgs),
    Train(train::TrainArgs),
    Check(check::CheckArgs),
    Basis(basis::BasisArgs),
    Discover(discover::DiscoverArgs),
}

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// Errors in the user's spec, already rendered for the terminal.
    Spec(String),
    /// Anything else: unreadable files, failed writes, engine failures.
    Other(anyhow::Error),
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Spec(_) => 2,
            CliError::Other(_) => 1,
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Other(e)
    }
}

impl From<crate::Diagnostics> for CliError {
    fn from(d: crate::Diagnostics) -> Self {
        CliError::Spec(d.render(std::io::stderr().is_terminal()))
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` arrive as "errors" that print to stdout.
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    match execute(cli.command) {
        Ok(()) => 0,
        Err(e) => {
            match &e {
                CliError::Spec(rendered) => eprint!("{rendered}"),
                CliError::Other(err) => eprintln!("error: {err:#}"),
            }
            e.exit_code()
        }
    }
}

/// Runs one command.
pub fn execute(command: Command) -> Result<(), CliError> {
    match command {
        Command::Build(args) => build::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Train(args) => train::run(args),
        Command::Check(args) => check::run(args),
        Command::Basis(args) => basis::run(args),
        Command::Discover(args) => discover::run(args),
    }
}

/// Reads, checks and plans the spec at `path`, printing its warnings to stderr.
/// Data paths and includes resolve against the spec's folder.
pub fn load_spec(path: &Path) -> Result<(String, Vec<ModelGraph>), CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?;
    let source = String::from_utf8_lossy(&bytes).into_owned();
    let base_dir = path.parent().unwrap_or(Path::new(""));
    let compiled = crate::compile(&source, &path.display().to_string(), base_dir)?;
    if !compiled.warnings.items.is_empty() {
        eprint!(
            "{}",
            compiled.warnings.render(std::io::stderr().is_terminal())
        );
    }
    Ok((source, compiled.graphs))
}

//! `symc build`: a spec in, its model graphs out as YAML.

use super::{load_spec, CliError};
use anyhow::Context;
use std::path::PathBuf;

/// Compile a spec into its model graph (YAML).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  symc build specs/inertia_emlp.sym -o inertia.yaml")]
pub struct BuildArgs {
    /// The spec file (`.sym`).
    pub spec: PathBuf,
    /// Write the YAML here instead of to stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run(args: BuildArgs) -> Result<(), CliError> {
    let (_, graphs) = load_spec(&args.spec)?;
    let yaml = crate::plan::to_yaml(&graphs).context("cannot write the graph as YAML")?;
    match args.output {
        Some(path) => std::fs::write(&path, yaml)
            .with_context(|| format!("cannot write `{}`", path.display()))?,
        None => print!("{yaml}"),
    }
    Ok(())
}

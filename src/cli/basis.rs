//! `symc basis`: solve for the equivariant maps between two representations.

use super::CliError;
use crate::lang::{parse_group_expr, parse_rep_expr};

/// Solve for the equivariant linear maps FROM → TO of a group and time the solve.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  symc basis 'SO(3)' 'V^2' 'V^2'      # prints dimension: 3")]
pub struct BasisArgs {
    /// A group expression, e.g. `SO(3)`, `O(1,3)`, `SO(3) x S(4)`,
    /// `lie(tolerance = 5e-3) { [[0, -1], [1, 0.001]] }`.
    pub group: String,
    /// The input representation, e.g. `5*scalar+5*V`.
    pub from: String,
    /// The output representation, e.g. `V^2`.
    pub to: String,
    /// Also print the basis matrices.
    #[arg(long)]
    pub show: bool,
}

pub fn run(args: BasisArgs) -> Result<(), CliError> {
    let group = parse_group_expr(&args.group)?;
    let from = parse_rep_expr(&args.from)?;
    let to = parse_rep_expr(&args.to)?;
    let solved = crate::group::solve_timed(&group, &from, &to).map_err(anyhow::Error::from)?;
    println!("dimension: {}", solved.dimension);
    println!("seconds: {:.6}", solved.seconds);
    if let Some(gap) = solved.gap {
        // How clearly the nullspace was separated: the tolerance (default
        // ~3e-5, or the group's `lie(tolerance = …)`) falls between these.
        println!(
            "singular-value gap: zero up to {:.2e}, kept from {:.2e}",
            gap.zero, gap.kept
        );
    }
    if args.show {
        for (k, m) in solved.blocks.to_basis().matrices().iter().enumerate() {
            println!("basis {k}:{m:.4}");
        }
    }
    Ok(())
}

//! The spec language: pest grammar → [`Ast`] → checked [`Spec`].
//!
//! [`parse`] reads one file, [`check`] resolves names, groups, representations and
//! dimensions (following `include`s), and every error of a file comes back at once
//! as [`Diagnostics`], rendered rustc style by [`Diagnostics::render`].

pub mod ast;
mod builder;
mod check;
mod diagnostic;
mod parser;
mod spec;

pub use ast::Ast;
pub use builder::{ModelBuilder, PortType, SpecBuilder};
pub use check::{CheckError, FileLoader, Loader};
pub use diagnostic::{Diagnostic, Diagnostics, FileId, Label, Severity, SourceMap, Span};
pub use parser::{ParseError, MAX_NESTING};
pub use spec::{Model, NamedGroup, Net, Port, Spec, Symmetry, SymmetryKind};

use crate::group::{Group, Rep};
use std::path::Path;

/// Parses one file into its syntax tree; syntax errors come back all at once.
///
/// ```
/// let ast = symc::lang::parse("group G = SO(3)\n", "g.sym").unwrap();
/// assert_eq!(ast.items.len(), 1);
/// let err = symc::lang::parse("group G = \n", "g.sym").unwrap_err();
/// assert!(err.render(false).contains("g.sym:2:1"));
/// ```
pub fn parse(text: &str, name: &str) -> Result<Ast, Diagnostics> {
    let mut sources = SourceMap::default();
    let file = sources.add(name, text);
    parser::parse_file(text, file).map_err(|errors| {
        let items = errors.iter().map(Diagnostic::from).collect();
        Diagnostics::new(sources, items)
    })
}

/// Parses and checks a spec; `base_dir` is where its data paths and includes are
/// resolved, and `loader` reads those files.
pub fn check_with(
    text: &str,
    name: &str,
    base_dir: &Path,
    loader: &dyn Loader,
) -> Result<Spec, Diagnostics> {
    let mut sources = SourceMap::default();
    let file = sources.add(name, text);
    let ast = parser::parse_file(text, file).map_err(|errors| {
        let items = errors.iter().map(Diagnostic::from).collect();
        Diagnostics::new(sources.clone(), items)
    })?;
    check::check_ast(&ast, file, name, sources, base_dir, loader)
        .map_err(|(s, items)| Diagnostics::new(s, items))
}

/// Parses and resolves a group expression such as `SO(3)` or `O(3) x S(4)`,
/// exactly as the right-hand side of a `group` declaration.
///
/// ```
/// let g = symc::lang::parse_group_expr("SO(3) x SO(2)").unwrap();
/// assert_eq!(g.n(), 5);
/// assert!(symc::lang::parse_group_expr("SO(3) x").is_err());
/// assert!(symc::lang::parse_group_expr("SU(2)").is_err());
/// ```
pub fn parse_group_expr(text: &str) -> Result<Group, Diagnostics> {
    let mut sources = SourceMap::default();
    let file = sources.add("<group>", text);
    match parser::parse_group(text, file) {
        Ok(expr) => check::resolve_group(&expr, sources),
        Err(e) => Err(Diagnostics::new(sources, vec![Diagnostic::from(&e)])),
    }
}

/// Parses a representation such as `5*scalar+5*V` or `V^2`.
///
/// ```
/// let rep = symc::lang::parse_rep_expr("5*scalar+5*V").unwrap();
/// assert_eq!(rep.size(3), 20);
/// assert_eq!(rep.to_string(), "5*scalar+5*V");
/// ```
pub fn parse_rep_expr(text: &str) -> Result<Rep, Diagnostics> {
    let mut sources = SourceMap::default();
    let file = sources.add("<rep>", text);
    parser::parse_rep(text, file)
        .map(|r| r.node)
        .map_err(|e| Diagnostics::new(sources, vec![Diagnostic::from(&e)]))
}

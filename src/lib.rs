//! symc: a compiler for symmetry in neural networks.
//!
//! The pipeline, one module per stage:
//! `lang` (spec text → checked [`lang::Spec`]) → `plan` (strategy per symmetry →
//! [`plan::ModelGraph`], the IR) → `backend` (dfdx execution) → `train`
//! (optimiser, loop, reports). `group` is the mathematics every stage stands on
//! and depends on nothing else in symc; `data` provides built-in systems and
//! loaders; `cli` is a thin layer over all of it.
//!
//! ```
//! let spec = r#"
//! group O5 = O(5)
//! model o5 {
//!   data     builtin.o5_synthetic(train = 1000, seed = 0)
//!   input    x: 2*V over O5
//!   output   y: scalar over O5
//!   symmetry O5 => loss(weight = 0.1, samples = 4)
//! }
//! "#;
//! let compiled = symc::compile(spec, "o5.sym", ".".as_ref()).unwrap();
//! assert_eq!(compiled.graphs[0].inputs[0].dim, 10);
//! let broken = spec.replace("O(5)", "O(5");
//! let errors = symc::compile(&broken, "o5.sym", ".".as_ref()).unwrap_err();
//! assert!(errors.render(false).contains("o5.sym:3:1"));
//! assert!(errors.render(false).contains("expected `)` or `,`, found `model`"));
//! ```

pub mod backend;
pub mod cli;
pub mod data;
pub mod discover;
pub mod group;
pub mod lang;
pub mod plan;
pub mod train;

pub use lang::{Diagnostic, Diagnostics, Spec, SpecBuilder};
pub use plan::ModelGraph;

use std::path::Path;

/// Parses one spec file into its syntax tree (`name` labels diagnostics).
pub fn parse(text: &str, name: &str) -> Result<lang::Ast, Diagnostics> {
    lang::parse(text, name)
}

/// Parses and checks a spec. Data paths and `include`s resolve against `base_dir`.
///
/// ```
/// let spec = symc::check("model m {\n data builtin.pendulum()\n state q: R^1, p: R^1\n}\n", "m.sym", ".".as_ref()).unwrap();
/// assert_eq!(spec.models[0].inputs.len(), 2);
/// ```
pub fn check(text: &str, name: &str, base_dir: &Path) -> Result<Spec, Diagnostics> {
    lang::check_with(text, name, base_dir, &lang::FileLoader)
}

/// The result of compiling a spec: one graph per model, and any warnings.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub graphs: Vec<ModelGraph>,
    pub warnings: Diagnostics,
}

/// Parses, checks and plans a spec: text in, one [`ModelGraph`] per model out.
pub fn compile(text: &str, name: &str, base_dir: &Path) -> Result<Compiled, Diagnostics> {
    let spec = check(text, name, base_dir)?;
    match plan::plan(&spec) {
        Ok(graphs) => Ok(Compiled {
            graphs,
            warnings: Diagnostics::new(spec.sources, spec.warnings),
        }),
        Err(errors) => {
            let mut items: Vec<Diagnostic> = errors.iter().map(Diagnostic::from).collect();
            items.extend(spec.warnings);
            Err(Diagnostics::new(spec.sources, items))
        }
    }
}

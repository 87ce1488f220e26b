//! Planning: choose a strategy per symmetry and emit the [`ModelGraph`] IR.

mod emlp;
mod graph;
mod planner;
mod validate;

pub use emlp::{gate_count, uniform_rep, BilinearPlan, BilinearTerm, BILINEAR_CHANNELS};
pub use graph::*;
pub use planner::{plan, PlanError};
pub use validate::{validate, Shapes, ValidationError};

/// The YAML text form of graphs (what `symc build` writes).
///
/// ```
/// let graphs = symc::compile("model m {\n data builtin.mass_spring()\n state q: R^1, p: R^1\n}\n", "m.sym", ".".as_ref()).unwrap().graphs;
/// let yaml = symc::plan::to_yaml(&graphs).unwrap();
/// assert_eq!(symc::plan::from_yaml(&yaml).unwrap(), graphs);
/// ```
pub fn to_yaml(graphs: &[ModelGraph]) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(graphs)
}

/// Reads graphs back from their YAML text form.
pub fn from_yaml(text: &str) -> Result<Vec<ModelGraph>, serde_yaml::Error> {
    serde_yaml::from_str(text)
}

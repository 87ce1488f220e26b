//! Built-in physical systems.

use super::{DataError, Splits};
use std::collections::BTreeMap;

/// The physical system `name`, or `None` when there is no such system.
pub fn builtin(_name: &str, _params: &BTreeMap<String, f64>) -> Option<Result<Splits, DataError>> {
    None
}

//! symc: a compiler for symmetry in neural networks.
//!
//! The pipeline, one module per stage:
//! `lang` (spec text → checked [`lang::Spec`]) → `plan` (strategy per symmetry →
//! [`plan::ModelGraph`], the IR) → `backend` (dfdx execution) → `train`
//! (optimiser, loop, reports). `group` is the mathematics every stage stands on
//! and depends on nothing else in symc; `data` provides built-in systems and
//! loaders; `cli` is a thin layer over all of it.

pub mod backend;
pub mod cli;
pub mod data;
pub mod group;
pub mod lang;
pub mod plan;
pub mod train;

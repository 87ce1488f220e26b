//! `train` stage of symc.

pub mod dynamics;

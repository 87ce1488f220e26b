//! `data` stage of symc.

pub mod systems;

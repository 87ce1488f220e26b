//! `backend` stage of symc.

pub mod physics;

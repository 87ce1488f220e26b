//! `train` stage of symc.

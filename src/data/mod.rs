//! `data` stage of symc.

//! `group` stage of symc.

//! `plan` stage of symc.

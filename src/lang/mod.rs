//! `lang` stage of symc.

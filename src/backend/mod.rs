//! `backend` stage of symc.

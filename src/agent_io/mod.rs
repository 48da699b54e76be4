//! The agent runtime: what runs beside an agent's process (the usage meter, the per-slot
//! setup command, the end-of-run notify command). The presets and rules themselves are
//! pure, in `ws_core::agents`; the agent settings of a run are read from git config by
//! [`crate::config::Config::agent_settings`].

pub mod meter;
pub mod notify;
pub mod setup;

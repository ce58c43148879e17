//! The supervisor (Piranha's pulse, lvsd and nanny in one process): heartbeats and the
//! HA state machine, floating addresses and their announcement, health checks driving
//! the IPVS table, the control socket. The decisions are pure modules (`ha`, `nanny`,
//! `node`, `heartbeat`, `argv`); the rest is the I/O around them. [`probe`] is a folder with one
//! file per family of check kinds.

pub mod activation;
pub mod addr;
pub mod announce;
pub mod argv;
pub mod checks;
pub mod command;
pub mod control;
pub mod failover;
pub mod ha;
pub mod heartbeat;
pub mod load;
pub mod lvsd;
pub mod nanny;
pub mod node;
pub mod notify;
pub mod probe;
pub mod scripts;
pub mod shared;
pub mod supervisor;
pub mod throttle;

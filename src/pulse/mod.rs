//! The supervisor (Piranha's pulse, lvsd and nanny in one process). Built up in
//! pieces: the heartbeat protocol first; the HA state machine, VIPs and health checks
//! follow (issue 4).

pub mod heartbeat;

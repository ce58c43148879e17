//! The supervisor (Piranha's pulse, lvsd and nanny in one process), built up in pieces
//! for issue 4: so far the heartbeat protocol and the HA state machine, both pure; the
//! sockets, VIPs, ARP, health checks and the control socket follow.

pub mod ha;
pub mod heartbeat;

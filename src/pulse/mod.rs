//! The supervisor (Piranha's pulse, lvsd and nanny in one process), built up in pieces
//! for issue 4: so far the heartbeat protocol, the HA state machine and the real-server
//! health policy, all pure; the sockets, VIPs, ARP, health probes and the control socket
//! follow.

pub mod announce;
pub mod control;
pub mod ha;
pub mod heartbeat;
pub mod nanny;
pub mod node;

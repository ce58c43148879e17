//! The supervisor's decisions, free of I/O: events and facts in, actions out.

pub mod argv;
pub mod control;
pub mod ha;
pub mod heartbeat;
pub mod load;
pub mod nanny;
pub mod node;
pub mod schedule;
pub mod throttle;
pub mod vrrp;

//! The supervisor's long-running tasks, joining the decisions in [`super::logic`] to
//! the I/O in [`super::io`].

pub mod activation;
pub mod checks;
pub mod failover;
pub mod lvsd;
pub mod notify;
pub mod shared;
pub mod startup;
pub mod supervisor;
pub mod vrrp;

//! The supervisor's hands on the machine: each module a thin shell over one facility.

pub mod addr;
pub mod announce;
pub mod command;
pub mod load;
pub mod probe;
pub mod scripts;
pub mod vrrp;

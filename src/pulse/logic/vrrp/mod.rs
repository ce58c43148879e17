//! VRRP (RFC 3768, RFC 5798), as keepalived 2.2.7 speaks it: the advert on the wire
//! ([`packet`]) and one instance's state machine ([`instance`]).

pub mod instance;
pub mod packet;
pub mod plan;

#[cfg(test)]
mod tests;

//! VRRP (RFC 3768, RFC 5798), as keepalived 2.2.7 speaks it: the advert on the wire
//! ([`packet`]), one instance's state machine ([`instance`]), what moves its priority
//! ([`track`]), sync groups ([`sync`]) and the way from a `vrrp` block to all of
//! them ([`plan`]).

pub mod instance;
pub mod packet;
pub mod plan;
pub mod sync;
pub mod track;

#[cfg(test)]
mod tests;

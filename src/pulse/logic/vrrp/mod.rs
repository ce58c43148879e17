//! VRRP (RFC 3768, RFC 5798), as keepalived 2.2.7 speaks it: the advert on the wire.

pub mod packet;

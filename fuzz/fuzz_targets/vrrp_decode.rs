//! Fuzzes the VRRP advert decoder (the bytes any host on the link can send). The input
//! is a whole IP datagram, as keepalived's captured adverts are (IPv4 as the raw
//! socket hands it over; IPv6 with its fixed header, whose addresses the receiver
//! takes from the socket). Beyond "never panics", whatever decodes must encode back
//! to bytes that decode to the same advert.
#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use lvs_director::pulse::logic::vrrp::packet::{split_ipv4, Advert};

/// Source, destination and payload of an IPv6 datagram without extension headers.
fn split_ipv6(d: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    if d.len() < 40 || d[0] >> 4 != 6 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([d[4], d[5]]));
    let payload = d.get(40..40 + len)?;
    let addr = |at: usize| {
        let mut o = [0u8; 16];
        o.copy_from_slice(&d[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    Some((addr(8), addr(24), payload))
}

fuzz_target!(|data: &[u8]| {
    let (src, dst, msg) = match split_ipv4(data) {
        Some((h, msg)) => (h.src.into(), h.dst.into(), msg),
        None => match split_ipv6(data) {
            Some(x) => x,
            None => return,
        },
    };
    let Ok(advert) = Advert::decode(src, dst, msg) else { return };
    let again = Advert::decode(src, dst, &advert.encode(src, dst))
        .unwrap_or_else(|e| panic!("re-encoded advert does not decode: {e}\n{advert:?}"));
    assert_eq!(again, advert, "the round trip changed the advert");
});

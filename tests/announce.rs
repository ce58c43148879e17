//! Gratuitous ARP and unsolicited NA on a real link: a veth pair between two network
//! namespaces that this test creates and removes; the peer end captures what arrives.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

use lvs_director::pulse::io::announce::{send_garp, send_unsolicited_na};
use socket2::{Domain, Protocol, Socket, Type};

mod common;
use common::netns::in_ns as in_netns;

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip(8) runs");
    assert!(st.success(), "ip {args:?} failed");
}

/// The namespaces, removed even when the test fails.
struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn ifindex(ns: &str, dev: &str) -> u32 {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "link", "show", dev])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split(':').next().unwrap().trim().parse().unwrap()
}

#[test]
fn garp_and_na_reach_the_peer() {
    if !common::netns::root_or_skip("garp_and_na_reach_the_peer") {
        return;
    }
    let id = std::process::id();
    let (a, b) = (format!("ann-a-{id}"), format!("ann-b-{id}"));
    let _guard = Netns(vec![a.clone(), b.clone()]);
    ip(&["netns", "add", &a]);
    ip(&["netns", "add", &b]);
    ip(&[
        "-n",
        &a,
        "link",
        "add",
        "v0",
        "address",
        "02:00:5e:10:20:30",
        "type",
        "veth",
        "peer",
        "name",
        "v1",
        "netns",
        &b,
    ]);
    // The advertisement leaves from the link-local address, as on any real interface;
    // without DAD it is usable at once.
    ip(&["-n", &a, "addr", "add", "fe80::1/64", "dev", "v0", "nodad"]);
    ip(&["-n", &a, "link", "set", "v0", "up"]);
    ip(&["-n", &b, "link", "set", "v1", "up"]);
    let idx = ifindex(&a, "v0");
    let mac = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    // Capture everything on the peer end, then send.
    let cap = in_netns(&b, || {
        let s = Socket::new(
            Domain::PACKET,
            Type::RAW,
            Some(Protocol::from(0x0003u16.to_be() as i32)),
        )
        .unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        s
    });
    in_netns(&a, move || {
        send_garp(idx, mac, Ipv4Addr::new(192, 0, 2, 10)).unwrap();
        send_unsolicited_na(idx, mac, "2001:db8::10".parse::<Ipv6Addr>().unwrap()).unwrap();
    });
    let mut frames = Vec::new();
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    while let Ok(n) = cap.recv(&mut buf) {
        // SAFETY: recv initialised the first n bytes.
        frames.push(
            buf[..n]
                .iter()
                .map(|b| unsafe { b.assume_init() })
                .collect::<Vec<u8>>(),
        );
    }
    let arp: Vec<_> = frames
        .iter()
        .filter(|f| f.len() >= 42 && f[12..14] == [0x08, 0x06])
        .collect();
    assert_eq!(arp.len(), 2, "request and reply form: {frames:?}");
    for f in &arp {
        assert_eq!(&f[0..6], &[0xff; 6], "to broadcast");
        assert_eq!(&f[6..12], &mac, "from our address");
        assert_eq!(&f[28..32], &[192, 0, 2, 10], "sender IP = VIP");
        assert_eq!(&f[38..42], &[192, 0, 2, 10], "target IP = VIP");
    }
    let na: Vec<_> = frames
        .iter()
        .filter(|f| f.len() >= 54 + 32 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 136)
        .collect();
    assert_eq!(na.len(), 1, "one neighbour advertisement: {frames:?}");
    let f = na[0];
    assert_eq!(f[21], 255, "hop limit 255");
    assert_eq!(
        &f[38..54],
        &Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets()
    );
    assert_ne!(&f[56..58], &[0, 0], "the kernel filled in the checksum");
    assert_eq!(
        &f[62..78],
        &"2001:db8::10".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(&f[80..86], &mac);
}

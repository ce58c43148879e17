//! The rtnetlink shell against the real kernel: each test creates its own network
//! namespace with a veth pair (this kernel may lack the dummy driver), runs its body on
//! a thread that entered the namespace, checks the result with ip(8), and removes the
//! namespace even when it fails. Skipped, with a notice, when not run as root.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lvs_director::pulse::io::addr::{AddOptions, AddrError, Rtnl};

mod common;
use common::netns::run;

const MAC: &str = "02:00:5e:10:20:30";

/// A namespace holding veth pair v0 (MAC above) / v1, both down; removed on drop.
struct Netns(String);

impl Netns {
    /// `None` (with a notice) when this process may not create namespaces.
    fn new(tag: &str) -> Option<Netns> {
        if !common::netns::root_or_skip(tag) {
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "rtnl-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Netns(name);
        ns.ip(&[
            "link", "add", "v0", "address", MAC, "type", "veth", "peer", "name", "v1",
        ]);
        Some(ns)
    }

    /// ip(8) inside the namespace; panics when it fails.
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.0];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs `f` on a thread that has entered the namespace (and only that thread).
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        common::netns::in_ns(&self.0, f)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn index(rtnl: &mut Rtnl, name: &str) -> u32 {
    rtnl.link(name).unwrap().index
}

/// keepalived's `virtual_ipaddress` options `scope` and `brd` reach the kernel.
#[test]
fn scope_and_broadcast_as_keepalived_sets_them() {
    let Some(ns) = Netns::new("scope") else {
        return;
    };
    ns.run(|| {
        let mut rtnl = Rtnl::connect().unwrap();
        let v0 = index(&mut rtnl, "v0");
        let options = AddOptions {
            label: Some("v0:vip"),
            scope: Some(253),
            broadcast: Some("192.0.2.127".parse().unwrap()),
        };
        assert!(rtnl.add_with(v0, ip("192.0.2.10"), 24, &options).unwrap());
    });
    let listed = ns.ip(&["-o", "-4", "addr", "show", "dev", "v0"]);
    assert!(
        listed.contains("inet 192.0.2.10/24 brd 192.0.2.127 scope link v0:vip"),
        "{listed}"
    );
}

#[test]
fn ipv4_alias_add_twice_delete_twice() {
    let Some(ns) = Netns::new("v4") else { return };
    let listed = ns.run(|| {
        let mut rtnl = Rtnl::connect().unwrap();
        let v0 = index(&mut rtnl, "v0");
        let vip = ip("192.0.2.10");
        assert!(rtnl.add(v0, vip, 24, Some("v0:1")).unwrap(), "added");
        // A host-route VIP on the same device: no broadcast for /32.
        assert!(rtnl.add(v0, ip("198.51.100.7"), 32, None).unwrap());
        let addrs = rtnl.addresses().unwrap();
        assert!(
            !rtnl.add(v0, vip, 24, Some("v0:1")).unwrap(),
            "already there"
        );
        addrs
    });
    let shown = ns.ip(&["-4", "-o", "addr", "show", "dev", "v0"]);
    assert!(
        shown.contains("inet 192.0.2.10/24 brd 192.0.2.255 scope global v0:1"),
        "{shown}"
    );
    assert!(
        shown.contains("inet 198.51.100.7/32 scope global v0"),
        "{shown}"
    );
    let a = listed
        .iter()
        .find(|a| a.addr == ip("192.0.2.10"))
        .unwrap_or_else(|| panic!("addresses() lists the VIP: {listed:?}"));
    assert_eq!((a.prefix, a.label.as_deref()), (24, Some("v0:1")));
    assert!(
        listed
            .iter()
            .any(|a| a.addr == ip("198.51.100.7") && a.prefix == 32),
        "{listed:?}"
    );

    ns.run(|| {
        let mut rtnl = Rtnl::connect().unwrap();
        let v0 = index(&mut rtnl, "v0");
        let vip = ip("192.0.2.10");
        // The prefix is part of the address: the wrong one deletes nothing.
        assert!(!rtnl.delete(v0, vip, 25).unwrap());
        assert!(rtnl.delete(v0, vip, 24).unwrap(), "deleted");
        assert!(!rtnl.delete(v0, vip, 24).unwrap(), "already gone");
        assert!(!rtnl.addresses().unwrap().iter().any(|a| a.addr == vip));
    });
    let shown = ns.ip(&["-4", "-o", "addr", "show", "dev", "v0"]);
    assert!(!shown.contains("192.0.2.10"), "{shown}");
}

#[test]
fn ipv6_is_usable_at_once() {
    let Some(ns) = Netns::new("v6") else { return };
    // Even on a link without carrier, where DAD could not even start.
    let (first, second, listed) = ns.run(|| {
        let mut rtnl = Rtnl::connect().unwrap();
        let v0 = index(&mut rtnl, "v0");
        let vip = ip("2001:db8::10");
        let first = rtnl.add(v0, vip, 64, None).unwrap();
        let second = rtnl.add(v0, vip, 64, None).unwrap();
        (first, second, rtnl.addresses().unwrap())
    });
    assert!(first && !second, "added, then already there");
    let shown = ns.ip(&["-6", "-o", "addr", "show", "dev", "v0"]);
    assert!(shown.contains("inet6 2001:db8::10/64"), "{shown}");
    assert!(!shown.contains("tentative"), "{shown}");
    let a = listed
        .iter()
        .find(|a| a.addr == ip("2001:db8::10"))
        .unwrap_or_else(|| panic!("{listed:?}"));
    assert!(
        !a.is_tentative() && a.prefix == 64 && a.label.is_none(),
        "{a:?}"
    );
    assert_ne!(a.flags & libc::IFA_F_NODAD, 0, "{a:?}");

    ns.run(|| {
        let mut rtnl = Rtnl::connect().unwrap();
        let v0 = index(&mut rtnl, "v0");
        assert!(rtnl.delete(v0, ip("2001:db8::10"), 64).unwrap());
        assert!(!rtnl.delete(v0, ip("2001:db8::10"), 64).unwrap());
    });
}

#[test]
fn link_state_follows_admin_and_carrier() {
    let Some(ns) = Netns::new("link") else { return };
    let state = |ns: &Netns| {
        ns.run(|| {
            let l = Rtnl::connect().unwrap().link("v0").unwrap();
            (l.admin_up, l.carrier, l.up)
        })
    };
    assert_eq!(state(&ns), (false, false, false), "down");
    ns.ip(&["link", "set", "v0", "up"]);
    assert_eq!(state(&ns), (true, false, false), "up, but the peer is down");
    ns.ip(&["link", "set", "v1", "up"]);
    // The operational state (IFF_RUNNING) follows the carrier through the kernel's
    // link-watch work queue, a moment later.
    let deadline = Instant::now() + Duration::from_secs(5);
    while state(&ns) != (true, true, true) {
        assert!(
            Instant::now() < deadline,
            "v0 never came up: {:?}",
            state(&ns)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let links = ns.run(|| Rtnl::connect().unwrap().links().unwrap());
    let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for n in ["lo", "v0", "v1"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let v0 = links.iter().find(|l| l.name == "v0").unwrap();
    assert_eq!(v0.mac, Some([0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]));
    let lo = links.iter().find(|l| l.name == "lo").unwrap();
    assert_eq!(
        (lo.index, lo.up),
        (1, false),
        "lo is down in a new namespace"
    );
}

#[test]
fn errors_say_what_and_where() {
    let Some(ns) = Netns::new("err") else { return };
    ns.run(|| {
        let mut rtnl = Rtnl::connect().unwrap();
        let v0 = index(&mut rtnl, "v0");

        let e = rtnl.link("eth9").unwrap_err();
        assert!(matches!(e, AddrError::NoDevice { .. }), "{e:?}");
        assert_eq!(e.to_string(), "look up link eth9: no such device");

        let e = rtnl.add(9999, ip("192.0.2.10"), 24, None).unwrap_err();
        assert!(matches!(e, AddrError::NoDevice { .. }), "{e:?}");
        assert_eq!(e.to_string(), "add 192.0.2.10/24 dev #9999: no such device");

        // The kernel would accept this label; it is refused before anything is sent.
        let e = rtnl
            .add(v0, ip("192.0.2.10"), 24, Some("foo:1"))
            .unwrap_err();
        assert!(matches!(e, AddrError::Invalid { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "add 192.0.2.10/24 dev v0 label foo:1: label \"foo:1\" must be the device \
             name or start with \"v0:\" (e.g. \"v0:1\")"
        );

        let e = rtnl
            .add(v0, ip("2001:db8::1"), 64, Some("v0:1"))
            .unwrap_err();
        assert!(e.to_string().contains("IPv4-only"), "{e}");
        let e = rtnl.delete(v0, ip("192.0.2.10"), 33).unwrap_err();
        assert_eq!(
            e.to_string(),
            "delete 192.0.2.10/33 dev v0: prefix length 33 is more than 32"
        );
        assert!(rtnl.addresses().unwrap().iter().all(|a| a.index != v0));
    });
}

/// Capabilities are per thread in Linux: a thread that drops CAP_NET_ADMIN from its
/// effective set before opening the socket is refused like an unprivileged user.
#[test]
fn without_cap_net_admin_the_error_says_so() {
    let Some(ns) = Netns::new("eperm") else {
        return;
    };
    let e = ns.run(|| {
        drop_cap_net_admin_on_this_thread();
        let mut rtnl = Rtnl::connect().unwrap();
        let v0 = index(&mut rtnl, "v0");
        rtnl.add(v0, ip("192.0.2.10"), 24, None).unwrap_err()
    });
    assert!(matches!(e, AddrError::PermissionDenied { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "add 192.0.2.10/24 dev v0: needs CAP_NET_ADMIN: run as root or grant the capability"
    );
}

fn drop_cap_net_admin_on_this_thread() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut hdr = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a version-3 header and the two data words it needs;
    // pid 0 is the calling thread, whose capabilities are the only ones changed.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()),
            0,
            "capget: {}",
            std::io::Error::last_os_error()
        );
        data[0].effective &= !(1 << CAP_NET_ADMIN);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()),
            0,
            "capset: {}",
            std::io::Error::last_os_error()
        );
    }
}

//! Random models for property tests: every value type can produce tricky but
//! writable values (quotes, backslashes, escapes, comments, IPv6, fractions).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::model::*;
use super::url::{UrlCheck, UrlList};
use super::value::*;
use super::vrrp::{AddrScope, IpList, Track, TrackList, Vip, VipList};

pub trait Arb {
    fn arb(r: &mut StdRng) -> Self;
}

fn pick<T: Copy>(r: &mut StdRng, xs: &[T]) -> T {
    *xs.choose(r).expect("non-empty")
}

fn chars_from(r: &mut StdRng, set: &[char], min: usize, max: usize) -> String {
    let n = r.gen_range(min..=max);
    (0..n).map(|_| pick(r, set)).collect()
}

const ALNUM: &[char] = &['a', 'b', 'c', 'x', 'y', 'z', 'A', 'Q', '0', '1', '7', '9'];

fn word(r: &mut StdRng, extra: &[char], max: usize) -> String {
    let mut set = ALNUM.to_vec();
    set.extend_from_slice(extra);
    let first = pick(r, &['a', 'k', 'w']);
    format!("{first}{}", chars_from(r, &set, 0, max - 1))
}

/// Characters that stress quoting and escaping.
const TRICKY: &[char] = &[
    'a', 'b', ' ', '\\', '"', '\'', '#', '=', '{', '}', '[', ']', 'n', 'r', 't', '%', 'é', '/',
    '.', '*', '(', ')',
];

impl Arb for u8 {
    fn arb(r: &mut StdRng) -> Self {
        r.gen()
    }
}
impl Arb for u16 {
    fn arb(r: &mut StdRng) -> Self {
        r.gen()
    }
}
impl Arb for u32 {
    fn arb(r: &mut StdRng) -> Self {
        if r.gen_bool(0.5) {
            r.gen_range(0..1000)
        } else {
            r.gen()
        }
    }
}
impl Arb for i32 {
    fn arb(r: &mut StdRng) -> Self {
        r.gen()
    }
}
impl Arb for bool {
    fn arb(r: &mut StdRng) -> Self {
        r.gen()
    }
}
impl Arb for Secs {
    fn arb(r: &mut StdRng) -> Self {
        Secs(pick(r, &[0, 1, 200, 1000, 1500, 6000, 18_000, 999_999]).max(r.gen_range(0..100_000)))
    }
}
impl Arb for IpAddr {
    fn arb(r: &mut StdRng) -> Self {
        if r.gen_bool(0.5) {
            IpAddr::V4(Ipv4Addr::from(r.gen::<u32>()))
        } else {
            IpAddr::V6(Ipv6Addr::from(r.gen::<u128>()))
        }
    }
}
impl Arb for Host {
    fn arb(r: &mut StdRng) -> Self {
        if r.gen_bool(0.7) {
            Host::Ip(IpAddr::arb(r))
        } else {
            let labels = r.gen_range(1..4);
            let name = (0..labels)
                .map(|_| word(r, &['-', '_'], 8).trim_end_matches('-').to_string())
                .collect::<Vec<_>>()
                .join(".");
            Host::Name(name)
        }
    }
}
impl Arb for Netmask {
    fn arb(r: &mut StdRng) -> Self {
        Netmask(r.gen_range(0..=128))
    }
}
impl Arb for PortSpec {
    fn arb(r: &mut StdRng) -> Self {
        if r.gen_bool(0.7) {
            PortSpec::Number(r.gen())
        } else {
            PortSpec::Service(
                pick(r, &["http", "https", "domain", "ftp", "x-custom", "sip"]).into(),
            )
        }
    }
}
impl Arb for AddrDev {
    fn arb(r: &mut StdRng) -> Self {
        let dev = word(r, &[':', '.', '-'], 15);
        AddrDev {
            addr: Host::arb(r),
            device: dev,
        }
    }
}
impl Arb for Word {
    fn arb(r: &mut StdRng) -> Self {
        let w = word(
            r,
            &['/', '.', '-', '_', ':', '@', '"', '\'', '[', ']', '#'],
            20,
        );
        // Sometimes starting with a character that a bare word cannot start with.
        let lead = pick(r, &["", "", "", "[", "#", "'", "\"", "]"]);
        let word = Word(format!("{lead}{w}"));
        // Only writable values: `'a"b` has no form that reads back (validate says so).
        if word.unwritable().is_some() {
            Word(w)
        } else {
            word
        }
    }
}
impl Arb for Text {
    fn arb(r: &mut StdRng) -> Self {
        let mut s = chars_from(r, TRICKY, 0, 24);
        if s.contains('"') && s.contains('\'') {
            s = s.replace('\'', "");
        }
        Text(s)
    }
}
impl Arb for Escaped {
    fn arb(r: &mut StdRng) -> Self {
        let mut set = TRICKY.to_vec();
        set.extend_from_slice(&['\r', '\n', '\t']);
        Escaped(chars_from(r, &set, 0, 24))
    }
}
impl Arb for List {
    fn arb(r: &mut StdRng) -> Self {
        let n = r.gen_range(0..4);
        List((0..n).map(|_| word(r, &['@', '.', '/'], 12)).collect())
    }
}
impl Arb for StatusSet {
    fn arb(r: &mut StdRng) -> Self {
        let n = r.gen_range(1..4);
        StatusSet(
            (0..n)
                .map(|_| {
                    let lo = r.gen_range(100..=599);
                    (lo, r.gen_range(lo..=599))
                })
                .collect(),
        )
    }
}
impl Arb for Scheduler {
    fn arb(r: &mut StdRng) -> Self {
        Scheduler(if r.gen_bool(0.8) {
            pick(r, KERNEL_SCHEDULERS).to_string()
        } else {
            word(r, &[], 6).to_ascii_lowercase()
        })
    }
}
impl Arb for LoadMonitor {
    fn arb(r: &mut StdRng) -> Self {
        match r.gen_range(0..6) {
            0 => LoadMonitor::None,
            1 => LoadMonitor::Uptime,
            2 => LoadMonitor::Rup,
            3 => LoadMonitor::Ruptime,
            4 => LoadMonitor::Command(pick(r, &["none", "uptime", "/bin/load %h"]).into()),
            _ => {
                let t = Text::arb(r).0;
                LoadMonitor::Command(if t.is_empty() { "x".into() } else { t })
            }
        }
    }
}
macro_rules! arb_enum {
    ($($t:ty),*) => {$(
        impl Arb for $t {
            fn arb(r: &mut StdRng) -> Self {
                pick(r, <$t>::ALL)
            }
        }
    )*};
}
arb_enum!(
    VrrpState,
    VrrpVersion,
    VrrpAuth,
    ServiceType,
    Forwarding,
    Protocol,
    TunnelType,
    TunnelCsum,
    CheckKind
);

/// Block names: mostly plain, sometimes what only quoting can write back.
fn name(r: &mut StdRng) -> String {
    match r.gen_range(0..10) {
        0 => pick(
            r,
            &["my web", "[server_name]", "a\"b", "it's", "x{", "#1", "{a}"],
        )
        .to_string(),
        _ => word(r, &['_', '-', '.', '[', ']', ':'], 12),
    }
}

/// Comments on some of the keywords that are set, and on the block and its end.
fn comments(r: &mut StdRng, keys: &[&'static str]) -> Comments {
    let mut c = Comments::default();
    let line = |r: &mut StdRng| {
        let mut set = TRICKY.to_vec();
        set.push('\t');
        chars_from(r, &set, 0, 30)
    };
    for key in keys.iter().copied().chain([Comments::BLOCK, Comments::END]) {
        if r.gen_bool(0.2) {
            let n = r.gen_range(1..3);
            c.add(key, (0..n).map(|_| line(r)).collect());
        }
    }
    c
}

fn keys(entries: &[Vec<(&'static str, String)>]) -> Vec<&'static str> {
    entries.iter().flatten().map(|(k, _)| *k).collect()
}

/// A random configuration that `render` can write (it may not validate): any values,
/// names and comments, except comments keyed to a keyword that is not set (they are
/// written before the block's end and read back there).
pub fn config(r: &mut StdRng) -> Config {
    let mut c = Config {
        global: GlobalSettings::arbitrary(r),
        ..Default::default()
    };
    let ck = keys(&[c.global.entries()]);
    c.comments = comments(r, &ck);
    // The parser files comments before the first keyword under that keyword.
    c.comments.0.remove(Comments::BLOCK);
    for _ in 0..r.gen_range(0..3) {
        let settings = FloatingSettings::arbitrary(r);
        let k = keys(&[settings.entries()]);
        c.floating.push(FloatingAddress {
            name: name(r),
            comments: comments(r, &k),
            settings,
        });
    }
    for _ in 0..r.gen_range(0..3) {
        let settings = LocalCheckSettings::arbitrary(r);
        let check = CheckSettings::arbitrary(r);
        let k = keys(&[settings.entries(), check.entries()]);
        c.local_checks.push(LocalCheck {
            name: name(r),
            comments: comments(r, &k),
            settings,
            check,
        });
    }
    for _ in 0..r.gen_range(0..3) {
        let settings = VrrpSettings::arbitrary(r);
        let k = keys(&[settings.entries()]);
        c.vrrp.push(VrrpInstance {
            name: name(r),
            comments: comments(r, &k),
            settings,
        });
    }
    for _ in 0..r.gen_range(0..4) {
        let failover = r.gen_bool(0.15);
        let settings = VirtualSettings::arbitrary(r);
        let check = CheckSettings::arbitrary(r);
        let k = keys(&[settings.entries(), check.entries()]);
        let mut vs = VirtualServer {
            name: name(r),
            comments: comments(r, &k),
            settings,
            check,
            servers: Vec::new(),
        };
        if failover {
            c.failovers.push(vs);
            continue;
        }
        for _ in 0..r.gen_range(0..4) {
            let settings = RealServerSettings::arbitrary(r);
            let check = if r.gen_bool(0.3) {
                CheckSettings::arbitrary(r)
            } else {
                CheckSettings::default()
            };
            let k = keys(&[settings.entries(), check.entries()]);
            vs.servers.push(RealServer {
                name: name(r),
                comments: comments(r, &k),
                settings,
                check,
            });
        }
        c.virtuals.push(vs);
    }
    c
}

impl Arb for Vip {
    fn arb(r: &mut StdRng) -> Self {
        let mut v = Vip::new(IpAddr::arb(r));
        if r.gen_bool(0.5) {
            v.prefix = Some(r.gen_range(0..=if v.addr.is_ipv4() { 32 } else { 128 }));
        }
        if r.gen_bool(0.3) {
            v.dev = Some(word(r, &['.', '-', '_'], 12));
        }
        if r.gen_bool(0.3) {
            v.label = Some(word(r, &[':', '-'], 12));
        }
        if r.gen_bool(0.3) {
            v.scope = Some(pick(
                r,
                &[
                    AddrScope::Global,
                    AddrScope::Site,
                    AddrScope::Link,
                    AddrScope::Host,
                ],
            ));
        }
        if v.addr.is_ipv4() && r.gen_bool(0.3) {
            v.brd = Some(Ipv4Addr::from(r.gen::<u32>()));
        }
        v
    }
}
impl Arb for VipList {
    fn arb(r: &mut StdRng) -> Self {
        VipList((0..r.gen_range(0..4)).map(|_| Vip::arb(r)).collect())
    }
}
impl Arb for TrackList {
    fn arb(r: &mut StdRng) -> Self {
        TrackList(
            (0..r.gen_range(0..4))
                .map(|_| {
                    let weight = r.gen_bool(0.5).then(|| r.gen_range(-253..=253));
                    Track {
                        name: word(r, &['_', '-', '.'], 12),
                        weight,
                        reverse: weight.is_some() && r.gen_bool(0.3),
                    }
                })
                .collect(),
        )
    }
}
impl Arb for IpList {
    fn arb(r: &mut StdRng) -> Self {
        IpList((0..r.gen_range(0..4)).map(|_| IpAddr::arb(r)).collect())
    }
}
impl Arb for UrlList {
    fn arb(r: &mut StdRng) -> Self {
        UrlList(
            (0..r.gen_range(1..4))
                .map(|_| UrlCheck {
                    path: format!("/{}", word(r, &['.', '/', '?', '=', '%'], 12)),
                    status: r.gen_bool(0.4).then(|| StatusSet::arb(r)),
                    digest: r
                        .gen_bool(0.3)
                        .then(|| (0..32).map(|_| pick(r, &['0', '9', 'a', 'f'])).collect()),
                    host: r.gen_bool(0.3).then(|| word(r, &['.', '-', ':'], 12)),
                    regex: r
                        .gen_bool(0.3)
                        .then(|| format!("^{} +{}", word(r, &[], 6), word(r, &['.'], 6))),
                })
                .collect(),
        )
    }
}

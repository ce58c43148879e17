//! `virtual_server` and `real_server` → `lvs.cf`'s virtual and real servers: address
//! or fwmark, scheduler, forwarding method and its tunnel, and the check parameters
//! both blocks hand down to their checkers.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::checkers::{hoist_checks, Params};
use super::report::{MAIL, NO_EQUIVALENT};
use super::tree::{shorten, Node};
use super::values::{ip_name, unique_name, writable_word};
use super::Importer;
use crate::config::lexer::Token;
use crate::config::model::*;
use crate::config::value::*;

/// `lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Method {
    fwd: Forwarding,
    tunnel_type: Option<TunnelType>,
    tunnel_port: Option<u16>,
    tunnel_csum: Option<TunnelCsum>,
}

impl Method {
    fn plain(fwd: Forwarding) -> Self {
        Method {
            fwd,
            tunnel_type: None,
            tunnel_port: None,
            tunnel_csum: None,
        }
    }
}

/// A converted real server, before its check is factored into the virtual server's.
struct Rs {
    server: RealServer,
    inhibit: bool,
    ip: IpAddr,
    port: Option<u16>,
}

/// How a virtual server is named in keepalived.
enum VsKey {
    Ip(IpAddr, Option<u16>),
    Fwmark(u32),
}

impl<'n> Importer<'n> {
    // ---- checks: parameters shared by virtual_server, real_server and checkers ----

    pub(super) fn common_param(&mut self, c: &Node, p: &mut Params) -> bool {
        match c.kw() {
            "delay_loop" => {
                if let Some(v) = self.arg_timer(c) {
                    if v.is_zero() {
                        self.bad_value(c, "it must be above 0");
                    } else {
                        p.delay_loop = Some(v);
                    }
                }
            }
            "connect_timeout" => {
                if let Some(v) = self.arg_timer(c) {
                    if v.is_zero() {
                        self.bad_value(c, "it must be above 0");
                    } else {
                        p.connect_timeout = Some(v);
                    }
                }
            }
            "retry" | "nb_get_retry" => {
                if let Some(v) = self.arg_u32(c) {
                    p.retry = Some(v);
                }
            }
            "virtualhost" => {
                if let Some(s) = self.one_arg(c) {
                    if writable_word(s) {
                        p.virtualhost = Some(s.to_string());
                    } else {
                        self.bad_value(c, "not a host name");
                    }
                }
            }
            "inhibit_on_failure" => {
                if let Some(v) = self.arg_flag(c) {
                    p.inhibit = Some(v);
                }
            }
            "delay_before_retry" => {
                if let Some(v) = self.arg_timer(c) {
                    if v.is_zero() {
                        self.bad_value(c, "it must be above 0");
                    } else {
                        p.retry_delay = Some(v);
                    }
                }
            }
            "warmup" => p.warmup = self.arg_timer(c),
            "alpha" => {
                if let Some(v) = self.arg_flag(c) {
                    p.alpha = Some(v);
                }
            }
            "log_all_failures" => self.not_imported(c, NO_EQUIVALENT),
            "smtp_alert" => self.not_imported(c, MAIL),
            _ => return false,
        }
        true
    }

    /// `lvs_method NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`.
    fn method(&mut self, c: &Node) -> Option<Method> {
        let args = c.args();
        let fwd = match args.first().map(|w| w.text.to_ascii_uppercase()).as_deref() {
            Some("NAT") => Forwarding::Nat,
            Some("DR") => Forwarding::Direct,
            Some("TUN") => Forwarding::Tunnel,
            _ => {
                self.bad_value(
                    c,
                    "NAT, DR or TUN expected (lvs-director has no other forwarding method)",
                );
                return None;
            }
        };
        let mut m = Method::plain(fwd);
        let mut dropped = Vec::new();
        let tun = fwd == Forwarding::Tunnel;
        let mut i = 1;
        while i < args.len() {
            let w = args[i].text.as_str();
            let v = args.get(i + 1).map(|a| a.text.as_str());
            match (w, v) {
                ("type", Some(t)) if tun => {
                    match TunnelType::from_word(t) {
                        Some(tt) => m.tunnel_type = Some(tt),
                        None => dropped.push(format!("type {t}")),
                    }
                    i += 2;
                }
                ("port", Some(p)) if tun => {
                    match p.parse::<u16>() {
                        Ok(p) => m.tunnel_port = Some(p),
                        Err(_) => dropped.push(format!("port {p}")),
                    }
                    i += 2;
                }
                (w, _) if tun && TunnelCsum::from_word(w).is_some() => {
                    m.tunnel_csum = TunnelCsum::from_word(w);
                    i += 1;
                }
                (w, _) => {
                    dropped.push(w.to_string());
                    i += 1;
                }
            }
        }
        if !dropped.is_empty() {
            let kw = c.kw().to_string();
            self.note(
                c,
                format!(
                    "`{kw}`: `{}` not imported: {NO_EQUIVALENT}",
                    shorten(&dropped.join(" "))
                ),
            );
        }
        Some(m)
    }

    // ---- virtual_server ----

    pub(super) fn virtual_server(&mut self, n: &'n Node) {
        let key = match n.args() {
            [g, name] if g.text == "group" => return self.virtual_server_group(n, &name.text),
            [f, m] if f.text == "fwmark" => match m.text.parse::<u32>() {
                Ok(v) if v > 0 => VsKey::Fwmark(v),
                _ => return self.not_imported(n, "the firewall mark must be a number above 0"),
            },
            [ip] => match ip.text.parse() {
                Ok(ip) => VsKey::Ip(ip, None),
                Err(_) => return self.not_imported(n, "not an IP address"),
            },
            [ip, port] => match (ip.text.parse(), port.text.parse::<u16>()) {
                (Ok(ip), Ok(p)) => VsKey::Ip(ip, Some(p)),
                _ => return self.not_imported(n, "`virtual_server IP PORT` expected"),
            },
            _ => {
                return self.not_imported(
                    n,
                    "`virtual_server IP PORT` or `virtual_server fwmark N` expected",
                )
            }
        };
        self.virtual_server_as(n, key);
    }

    /// `virtual_server group NAME`: one `virtual` block per address (each address of a
    /// range), port or firewall mark of the group, with the same servers and checks
    /// (the checks of one real server under several of them run once). What the
    /// block's body says alike for every entry is reported once.
    fn virtual_server_group(&mut self, n: &'n Node, name: &str) {
        let Some(g) = self.vs_groups.get(name).copied() else {
            return self.not_imported(n, &format!("no virtual_server_group {name} is defined"));
        };
        let mut keys = Vec::new();
        for e in g.children() {
            let args: Vec<&str> = std::iter::once(e.kw())
                .chain(e.args().iter().map(|w| w.text.as_str()))
                .collect();
            match args.as_slice() {
                ["fwmark", m, ..] => match m.parse::<u32>() {
                    Ok(v) if v > 0 => keys.push(VsKey::Fwmark(v)),
                    _ => self.bad_value(e, "the firewall mark must be a number above 0"),
                },
                [addr, port, ..] => match (group_range(addr), port.parse::<u16>()) {
                    (Ok(ips), Ok(p)) => {
                        keys.extend(ips.into_iter().map(|ip| VsKey::Ip(ip, Some(p))))
                    }
                    (Err(why), _) => self.bad_value(e, &why),
                    (_, Err(_)) => self.bad_value(e, "the port is not a number"),
                },
                _ => self.bad_value(e, "`IP[-LAST] PORT` or `fwmark N` expected"),
            }
            if e.args().len() > 2 || (e.kw() != "fwmark" && e.args().len() > 1) {
                self.not_imported(e, "only the address, port or mark of a group entry is kept");
            }
        }
        if keys.is_empty() {
            return self.not_imported(
                n,
                &format!("virtual_server_group {name} has no usable entry"),
            );
        }
        let before = self.notes.len();
        for key in keys {
            let seen = self.notes.len();
            self.virtual_server_as(n, key);
            // What every expansion says alike is said once.
            let new = self.notes.split_off(seen);
            for note in new {
                let said = self.notes[before..]
                    .iter()
                    .any(|o| o.file == note.file && o.line == note.line && o.text == note.text);
                if !said {
                    self.notes.push(note);
                }
            }
        }
    }

    fn virtual_server_as(&mut self, n: &'n Node, key: VsKey) {
        let mut params = Params::default();
        let mut method = Method::plain(Forwarding::Nat);
        let mut sched: Option<Scheduler> = None;
        let mut flags = Vec::new();
        let mut st = VirtualSettings {
            active: Some(true),
            ..Default::default()
        };
        let mut protocol = None;
        let mut sorry: Option<(IpAddr, Option<u16>, &'n Node)> = None;
        let mut reals = Vec::new();
        for c in n.children() {
            if self.common_param(c, &mut params) {
                continue;
            }
            match c.kw() {
                "lb_algo" | "lvs_sched" => {
                    if let Some(s) = self.one_arg(c) {
                        let s = Scheduler(s.to_ascii_lowercase());
                        if s.is_known() {
                            sched = Some(s);
                        } else {
                            self.bad_value(
                                c,
                                &format!(
                                    "lvs-director knows the schedulers {}; wlc is used",
                                    KERNEL_SCHEDULERS.join(" ")
                                ),
                            );
                        }
                    }
                }
                "lb_kind" | "lvs_method" => {
                    if let Some(m) = self.method(c) {
                        method = m;
                    }
                }
                "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
                | "mh-fallback" => flags.push(c),
                "ops" => st.one_packet = Some(true),
                "persistence_timeout" => {
                    // keepalived: without a value, IPVS's default of 360 s.
                    if c.args().is_empty() {
                        st.persistent = Some(360);
                    } else if let Some(v) = self.arg_u32(c) {
                        st.persistent = (v > 0).then_some(v);
                    }
                }
                "persistence_granularity" => {
                    if let Some(s) = self.one_arg(c) {
                        match Netmask::parse(&[Token::bare(s, 1)]) {
                            Ok(m) => st.pmask = Some(m),
                            Err(_) => self.bad_value(c, "not a netmask or prefix length"),
                        }
                    }
                }
                "persistence_engine" => {
                    self.not_imported(c, "persistence engines (sip) are not supported")
                }
                "protocol" => match self.one_arg(c).map(str::to_ascii_lowercase).as_deref() {
                    Some("tcp") => protocol = Some((Protocol::Tcp, c)),
                    Some("udp") => protocol = Some((Protocol::Udp, c)),
                    Some("sctp") => protocol = Some((Protocol::Sctp, c)),
                    Some(_) => self.bad_value(c, "TCP, UDP or SCTP expected"),
                    None => {}
                },
                "sorry_server" => {
                    let args = c.args();
                    let ip = args.first().and_then(|w| w.text.parse::<IpAddr>().ok());
                    let port = args.get(1).map(|w| w.text.parse::<u16>());
                    match (ip, port, args.len()) {
                        (Some(ip), None, 1) => sorry = Some((ip, None, c)),
                        (Some(ip), Some(Ok(p)), 2) => sorry = Some((ip, Some(p), c)),
                        _ => self.bad_value(c, "`sorry_server IP [PORT]` expected"),
                    }
                }
                "sorry_server_inhibit" => {
                    if let Some(v) = self.arg_flag(c) {
                        st.sorry_server_inhibit = Some(v);
                    }
                }
                "sorry_server_lvs_method" => self.not_imported(
                    c,
                    "the sorry server uses the virtual server's forwarding method",
                ),
                "real_server" => reals.push(c),
                "quorum" => {
                    if let Some(v) = self.arg_u32(c) {
                        if v == 0 {
                            self.bad_value(c, "it must be at least 1");
                        } else {
                            st.quorum = Some(v);
                        }
                    }
                }
                "hysteresis" => st.hysteresis = self.arg_u32(c),
                "quorum_up" => st.quorum_up = self.command(c, false),
                "omega" => {
                    if let Some(v) = self.arg_flag(c) {
                        st.omega = Some(v);
                    }
                }
                "quorum_down" => st.quorum_down = self.command(c, false),
                "ha_suspend" => self.not_imported(c, NO_EQUIVALENT),
                "nat_mask" => self.not_imported(
                    c,
                    "the real servers' gateway is nat_router with nat_nmask in lvs-director",
                ),
                _ => self.not_imported(c, NO_EQUIVALENT),
            }
        }
        let protocol = match (&key, protocol) {
            // keepalived: "protocol specified for fwmark - protocol will be ignored".
            (VsKey::Fwmark(_), Some((p, at))) => {
                if p != Protocol::Tcp {
                    self.not_imported(
                        at,
                        "a fwmark service has no protocol (keepalived ignores it too)",
                    );
                }
                Protocol::Tcp
            }
            (VsKey::Fwmark(_), None) => Protocol::Tcp,
            (VsKey::Ip(..), Some((p, _))) => p,
            // keepalived: "no protocol set - defaulting to UDP" (the kernel's default).
            (VsKey::Ip(..), None) => {
                self.note(n, format!("`{}` has no `protocol`: keepalived runs it as UDP, and so does the import; add `protocol = tcp` if TCP was meant", n.text()));
                Protocol::Udp
            }
        };
        let (mut base, svc, vs_port) = match key {
            VsKey::Ip(ip, p) => {
                let p = p.unwrap_or(0);
                (
                    format!("vs_{}_{p}", ip_name(&ip)),
                    format!("{ip} {p} {protocol}"),
                    Some(p),
                )
            }
            VsKey::Fwmark(m) => (format!("fwmark_{m}"), format!("fwmark {m}"), None),
        };
        if !self.services.insert(svc) {
            return self.not_imported(n, "the same service is already imported above");
        }
        if protocol != Protocol::Tcp {
            base.push_str(&format!("_{protocol}"));
        }
        if let Some(p) = vs_port {
            st.port = Some(PortSpec::Number(p));
            // keepalived: "zero port only valid for persistent services - setting".
            if p == 0 && st.persistent.is_none() {
                st.persistent = Some(360);
                self.note(n, format!("`{}` has no port: persistent = 360, as keepalived makes an all-ports service persistent", n.text()));
            }
        }
        if protocol != Protocol::Tcp {
            st.protocol = Some(protocol);
        }
        let sched_name = sched.as_ref().map_or("wlc", |s| s.0.as_str()).to_string();
        for f in flags {
            match (f.kw(), sched_name.as_str()) {
                ("sh-port", "sh") | ("mh-port", "mh") | ("flag-2", "sh" | "mh") => {
                    st.sched_port = Some(true)
                }
                ("sh-fallback", "sh") | ("mh-fallback", "mh") | ("flag-1", "sh" | "mh") => {
                    st.sched_fallback = Some(true)
                }
                _ => self.not_imported(
                    f,
                    &format!("the {sched_name} scheduler has no such flag in lvs-director"),
                ),
            }
        }
        st.scheduler = sched;
        st.forwarding = Some(method.fwd);

        let vip_family = match key {
            VsKey::Ip(ip, _) => Some(ip.is_ipv6()),
            VsKey::Fwmark(_) => None,
        };
        let mut servers: Vec<Rs> = Vec::new();
        let mut dests = HashSet::new();
        let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
        for r in reals {
            let Some(rs) = self.real_server(r, &params, protocol, vs_port, method) else {
                continue;
            };
            let fwd = rs.server.settings.forwarding.unwrap_or(method.fwd);
            let family = vip_family.or(servers.first().map(|s| s.ip.is_ipv6()));
            if family.is_some_and(|six| six != rs.ip.is_ipv6()) && fwd != Forwarding::Tunnel {
                self.not_imported(
                    r,
                    "its address family differs from the virtual server's, which only TUN forwarding allows",
                );
                continue;
            }
            if !dests.insert((rs.ip, rs.port.or(vs_port))) {
                self.not_imported(
                    r,
                    "the same address and port is already a real server of this virtual_server",
                );
                continue;
            }
            *per_ip.entry(rs.ip).or_default() += 1;
            servers.push(rs);
        }
        let mut taken = HashSet::new();
        for rs in &mut servers {
            // Named after the address; the port joins it when one host serves twice.
            let base = if per_ip.get(&rs.ip).is_some_and(|&n| n > 1) {
                let port = rs.port.or(vs_port).unwrap_or(0);
                format!("rs_{}_{port}", ip_name(&rs.ip))
            } else {
                format!("rs_{}", ip_name(&rs.ip))
            };
            let name = unique_name(base, &taken);
            taken.insert(name.clone());
            rs.server.name = name;
        }
        // inhibit_on_failure is per real server in keepalived: on the virtual server when
        // every server has it, on each server that has it otherwise.
        let inhibited = servers.iter().filter(|s| s.inhibit).count();
        if inhibited > 0 && inhibited == servers.len() {
            st.quiesce_server = Some(true);
        } else if inhibited > 0 {
            for rs in servers.iter_mut().filter(|s| s.inhibit) {
                rs.server.settings.quiesce_server = Some(true);
            }
        }
        if let Some((ip, port, _)) = sorry {
            st.sorry_server = Some(ip);
            // keepalived's sorry server port defaults to the virtual server's.
            if let Some(p) = port.filter(|&p| Some(p) != vs_port) {
                st.sorry_port = Some(PortSpec::Number(p));
            }
        }
        let taken: HashSet<String> = self.cfg.virtuals.iter().map(|v| v.name.clone()).collect();
        let mut vs = VirtualServer {
            name: unique_name(base, &taken),
            settings: st,
            check: CheckSettings::default(),
            servers: servers.into_iter().map(|r| r.server).collect(),
            comments: Comments::default(),
        };
        hoist_checks(&mut vs);
        match key {
            VsKey::Ip(ip, _) => self.vs_address(&mut vs.settings, ip, n),
            VsKey::Fwmark(m) => {
                vs.settings.fwmark = Some(m);
                self.fwmark_pending.push((self.cfg.virtuals.len(), n));
            }
        }
        self.cfg.virtuals.push(vs);
    }

    fn vs_address(&mut self, st: &mut VirtualSettings, ip: IpAddr, n: &Node) {
        if let Some(v) = self.vips.iter_mut().find(|v| v.addr == ip) {
            v.used = true;
            st.address = Some(AddrDev {
                addr: Host::Ip(ip),
                device: v.dev.clone(),
            });
            st.vip_nmask = v.prefix.map(Netmask);
            return;
        }
        let dev = self.default_dev.clone().unwrap_or_else(|| "eth0".into());
        self.note(
            n,
            format!("`{}`: {ip} is not a VRRP address (virtual_ipaddress): lvs-director raises it itself on the active director, on {dev} (assumed; check `address`)", n.text()),
        );
        st.address = Some(AddrDev {
            addr: Host::Ip(ip),
            device: dev,
        });
    }

    fn real_server(
        &mut self,
        n: &'n Node,
        vs_params: &Params,
        proto: Protocol,
        vs_port: Option<u16>,
        vs_method: Method,
    ) -> Option<Rs> {
        let (ip, port) = match n.args() {
            [ip] => (ip, None),
            [ip, port] => match port.text.parse::<u16>() {
                Ok(p) => (ip, Some(p)),
                Err(_) => {
                    self.bad_value(n, "the port is not a number");
                    return None;
                }
            },
            _ => {
                self.bad_value(n, "`real_server IP [PORT]` expected");
                return None;
            }
        };
        let Ok(ip) = ip.text.parse::<IpAddr>() else {
            self.bad_value(n, "not an IP address");
            return None;
        };
        let mut settings = RealServerSettings {
            address: Some(Host::Ip(ip)),
            active: Some(true),
            ..Default::default()
        };
        // A port equal to the virtual server's is inherited, as in Piranha; a fwmark
        // service has no port, and keepalived's 0 keeps the client's destination port.
        settings.port = match (port, vs_port) {
            (Some(p), Some(v)) if p == v => None,
            (Some(p), _) => Some(PortSpec::Number(p)),
            (None, Some(_)) => None,
            (None, None) => Some(PortSpec::Number(0)),
        };
        let mut params = Params::default();
        let mut method = None;
        let mut checkers = Vec::new();
        for c in n.children() {
            if self.common_param(c, &mut params) {
                continue;
            }
            match c.kw() {
                "weight" => {
                    if let Some(w) = self.arg_u32(c) {
                        let max = crate::config::validate::MAX_WEIGHT;
                        if w > max {
                            self.note(c, format!("`weight {w}`: lowered to {max}, the largest IPVS weight lvs-director allows"));
                        }
                        settings.weight = Some(w.min(max));
                    }
                }
                "lvs_method" | "lb_kind" => method = self.method(c),
                "notify_up" => settings.notify_up = self.command(c, false),
                "notify_down" => settings.notify_down = self.command(c, false),
                "uthreshold" => settings.uthreshold = self.arg_u32(c),
                "lthreshold" => settings.lthreshold = self.arg_u32(c),
                "HTTP_GET" | "SSL_GET" | "TCP_CHECK" | "MISC_CHECK" | "UDP_CHECK"
                | "PING_CHECK" | "DNS_CHECK" | "SMTP_CHECK" | "BFD_CHECK" | "FILE_CHECK" => {
                    checkers.push(c)
                }
                _ => self.not_imported(c, NO_EQUIVALENT),
            }
        }
        let m = method.unwrap_or(vs_method);
        if m.fwd != vs_method.fwd {
            settings.forwarding = Some(m.fwd);
        }
        if m.fwd == Forwarding::Tunnel {
            settings.tunnel_type = m.tunnel_type;
            settings.tunnel_port = m.tunnel_port;
            settings.tunnel_csum = m.tunnel_csum;
        }
        let eff = params.over(vs_params);
        let check = match checkers.split_first() {
            Some((first, rest)) => {
                for r in rest {
                    self.not_imported(
                        r,
                        &format!("lvs-director runs one health check per real server; the first one ({}, line {}) is used, where keepalived required all to pass", first.kw(), first.line),
                    );
                }
                self.checker(first, &eff, proto, (ip, port.or(vs_port).unwrap_or(0)))
            }
            None => CheckSettings {
                check: Some(CheckKind::None),
                ..Default::default()
            },
        };
        let eff_port = port.or(vs_port).unwrap_or(0);
        let needs_port = matches!(
            check.check,
            Some(CheckKind::Tcp | CheckKind::Udp | CheckKind::Http | CheckKind::Https)
        );
        if eff_port == 0 && needs_port && check.check_port.is_none() {
            self.note(
                n,
                format!("`real_server {ip}` has no port (IPVS keeps the client's destination port): set check_port, or its check connects to port 0"),
            );
        }
        Some(Rs {
            server: RealServer {
                name: String::new(),
                settings,
                check,
                comments: Comments::default(),
            },
            inhibit: eff.inhibit.unwrap_or(false),
            ip,
            port,
        })
    }
}

/// The addresses of a group entry: `IP`, or keepalived's range `IP-LAST`, where LAST
/// replaces the address's last byte (IPv4) or last group (IPv6, hexadecimal).
fn group_range(text: &str) -> Result<Vec<IpAddr>, String> {
    const MAX: usize = 256;
    let Some((first, last)) = text.split_once('-') else {
        return text
            .parse::<IpAddr>()
            .map(|ip| vec![ip])
            .map_err(|_| format!("`{text}` is not an IP address"));
    };
    let ip: IpAddr = first
        .parse()
        .map_err(|_| format!("`{first}` is not an IP address"))?;
    let bad = || {
        format!("`{text}`: the end of the range is not a last byte (IPv4) or group (IPv6) above the start")
    };
    let out: Vec<IpAddr> = match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            let end: u8 = last.parse().map_err(|_| bad())?;
            if end < o[3] {
                return Err(bad());
            }
            (o[3]..=end)
                .map(|b| IpAddr::from([o[0], o[1], o[2], b]))
                .collect()
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            let end = u16::from_str_radix(last, 16).map_err(|_| bad())?;
            if end < s[7] || usize::from(end - s[7]) >= MAX {
                return Err(bad());
            }
            (s[7]..=end)
                .map(|g| {
                    let mut t = s;
                    t[7] = g;
                    IpAddr::from(t)
                })
                .collect()
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::config::validate;
    use crate::config::value::*;

    /// keepalived's virtual_server_group: one `virtual` per address of the group
    /// (ranges included) and per firewall mark, each with the servers and checks, the
    /// body's warnings once; a bad entry or an unknown group is a warning.
    #[test]
    fn a_virtual_server_group_becomes_one_virtual_per_entry() {
        let r = imp("virtual_server_group web {\n 10.0.0.1-3 80\n 2001:db8::a-b 80\n fwmark 7\n 10.0.0.9 http\n}\nvirtual_server group web {\n protocol TCP\n lb_kind DR\n frobnicate\n real_server 10.0.1.1 80 { TCP_CHECK { connect_timeout 2 } }\n}\nvirtual_server group none {\n protocol TCP\n}\n");
        let names: Vec<&str> = r.config.virtuals.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "vs_10_0_0_1_80",
                "vs_10_0_0_2_80",
                "vs_10_0_0_3_80",
                "vs_2001_db8__a_80",
                "vs_2001_db8__b_80",
                "fwmark_7"
            ]
        );
        for v in &r.config.virtuals {
            // The IPv4 server cannot serve the IPv6 addresses under DR (warned once).
            let want = usize::from(!v.name.starts_with("vs_2001"));
            assert_eq!(v.servers.len(), want, "{}", v.name);
        }
        assert_eq!(r.config.virtuals[0].check.timeout, Some(Secs::from_secs(2)));
        let family = r
            .warnings
            .iter()
            .filter(|w| w.contains("address family differs"))
            .count();
        assert_eq!(family, 1, "{:#?}", r.warnings);
        assert_eq!(r.config.virtuals[5].settings.fwmark, Some(7));
        let frob = r
            .warnings
            .iter()
            .filter(|w| w.contains("frobnicate"))
            .count();
        assert_eq!(frob, 1, "{:#?}", r.warnings);
        assert!(
            has(
                &r.warnings,
                "keepalived.conf:5: `10.0.0.9 http` not imported: the port is not a number"
            ),
            "{:#?}",
            r.warnings
        );
        assert!(
            has(&r.warnings, "no virtual_server_group none is defined"),
            "{:#?}",
            r.warnings
        );
        assert!(!has(&r.warnings, "groups are not supported"));
        assert!(validate(&r.config).iter().all(|d| !d.is_error()));
    }

    #[test]
    fn odd_values_are_warnings_not_failures() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol UDP\n lb_algo twos\n lb_kind FNAT\n real_server 10.0.0.2 80 {\n  weight 99999999\n  HTTP_GET { url { path health } }\n }\n real_server fe80::1 80 { }\n}\nvirtual_server 10.0.0.1 80 { protocol UDP }\n");
        let v = &r.config.virtuals[0];
        assert_eq!(v.settings.scheduler, None);
        assert_eq!(v.servers.len(), 1);
        assert_eq!(v.servers[0].settings.weight, Some(65_535));
        assert_eq!(
            v.check.check,
            Some(CheckKind::Ping),
            "no HTTP check of a UDP service, and no TCP one either"
        );
        assert_eq!(r.config.virtuals.len(), 1);
        for w in [
            "`lb_algo twos` not imported",
            "`lb_kind FNAT` not imported",
            "`weight 99999999`: lowered to 65535",
            "an HTTP check cannot test a UDP service; check = ping is used instead",
            "`real_server fe80::1 80 { … }` not imported: its address family differs",
            "the same service is already imported above",
        ] {
            assert!(has(&r.warnings, w), "{w}: {:#?}", r.warnings);
        }
        assert!(validate(&r.config).iter().all(|d| !d.is_error()));
    }
}

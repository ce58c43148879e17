//! `vrrp_instance` and `vrrp_sync_group` → the director pair (primary, backup,
//! heartbeat, preemption, announcements) and the VRRP addresses. lvs-director runs no
//! VRRP, so much of what a keepalived user loses is said here.

use std::net::IpAddr;

use super::report::{MAIL, NOT_VRRP, NO_EQUIVALENT, ONE_HEARTBEAT};
use super::tree::{join_words, shorten, Node};
use super::values::writable_word;
use super::Importer;
use crate::config::model::*;
use crate::config::value::*;

/// A VRRP address (`virtual_ipaddress` entry).
pub(super) struct Vip<'n> {
    pub(super) addr: IpAddr,
    pub(super) prefix: Option<u8>,
    pub(super) dev: String,
    pub(super) instance: String,
    pub(super) node: &'n Node,
    pub(super) used: bool,
}

/// What a `vrrp_instance` contributes once all instances have been read.
#[derive(Default)]
pub(super) struct Instance<'n> {
    node: Option<&'n Node>,
    name: String,
    state: Option<(bool, &'n Node)>,
    interface: Option<String>,
    priority: Option<u32>,
    advert: Option<(Secs, &'n Node)>,
    nopreempt: Option<&'n Node>,
    preempt_delay: Option<(Secs, &'n Node)>,
    src: Option<(IpAddr, &'n Node)>,
    mcast_src: Option<(IpAddr, &'n Node)>,
    peers: Vec<(IpAddr, &'n Node)>,
    vip_nodes: Vec<&'n Node>,
    tracks_links: bool,
    dont_track_primary: bool,
    /// Per-instance GARP settings, which override global_defs' in keepalived.
    garp_count: Option<(u32, &'n Node)>,
    garp_refresh: Option<(Secs, &'n Node)>,
}

impl Instance<'_> {
    /// keepalived starts an instance as MASTER only with `state MASTER`, or as the
    /// address owner (priority 255).
    fn master(&self) -> bool {
        self.state
            .map_or(self.priority == Some(255), |(master, _)| master)
    }
}

impl<'n> Importer<'n> {
    pub(super) fn instance(&mut self, n: &'n Node) -> Instance<'n> {
        let name = n
            .args()
            .first()
            .map_or_else(|| "VI".to_string(), |w| w.text.clone());
        let mut inst = Instance {
            node: Some(n),
            name,
            ..Default::default()
        };
        for c in n.children() {
            match c.kw() {
                "state" => match self.one_arg(c).map(str::to_ascii_uppercase).as_deref() {
                    Some("MASTER") => inst.state = Some((true, c)),
                    Some("BACKUP") => inst.state = Some((false, c)),
                    Some(_) => self.bad_value(c, "MASTER or BACKUP expected (keepalived starts it as BACKUP)"),
                    None => {}
                },
                "interface" => {
                    if let Some(s) = self.one_arg(c) {
                        if writable_word(s) {
                            inst.interface = Some(s.to_string());
                        } else {
                            self.bad_value(c, "not an interface name");
                        }
                    }
                }
                "virtual_router_id" => {
                    if let Some(v) = self.arg_u32(c) {
                        self.vrids.insert(inst.name.clone(), v);
                    }
                    self.not_imported(c, "lvs-director's directors know each other by address (primary, backup)");
                }
                "priority" => {
                    inst.priority = self.arg_u32(c);
                    self.not_imported(c, "the roles come from primary and backup");
                }
                "advert_int" => inst.advert = self.arg_timer(c).map(|v| (v, c)),
                "authentication" => self.not_imported(
                    c,
                    "lvs-director authenticates heartbeats with HMAC-SHA256 and a shared key: create one (e.g. `head -c 32 /dev/urandom > /etc/sysconfig/ha/heartbeat.key`, mode 0600, the same file on both directors) and set heartbeat_key_file",
                ),
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    if c.block.is_some() {
                        inst.vip_nodes.extend(c.children());
                    } else {
                        self.not_imported(c, "a block `{ … }` was expected");
                    }
                }
                "nopreempt" => inst.nopreempt = Some(c),
                "preempt" => {}
                "preempt_delay" => inst.preempt_delay = self.arg_timer(c).map(|v| (v, c)),
                "unicast_src_ip" => match self.one_arg(c).map(str::parse::<IpAddr>) {
                    Some(Ok(ip)) => inst.src = Some((ip, c)),
                    Some(Err(_)) => self.bad_value(c, "not an IP address"),
                    None => {}
                },
                "mcast_src_ip" => match self.one_arg(c).map(str::parse::<IpAddr>) {
                    Some(Ok(ip)) => inst.mcast_src = Some((ip, c)),
                    Some(Err(_)) => self.bad_value(c, "not an IP address"),
                    None => {}
                },
                "unicast_peer" => self.peers(c, &mut inst),
                "track_interface" => {
                    inst.tracks_links = true;
                    self.note(c, "`track_interface` imported as monitor_links = 1: lvs-director watches all heartbeat and service links, not a list");
                }
                "dont_track_primary" => inst.dont_track_primary = true,
                "lvs_sync_daemon_interface" => {
                    if let Some(s) = self.one_arg(c) {
                        self.set_sync_iface(c, s.to_string());
                    }
                }
                "garp_master_repeat" => inst.garp_count = self.arg_u32(c).map(|v| (v, c)),
                "garp_master_refresh" => inst.garp_refresh = self.arg_timer(c).map(|v| (v, c)),
                "garp_master_delay" | "garp_master_refresh_repeat" | "garp_lower_prio_delay"
                | "garp_lower_prio_repeat" => self.not_imported(
                    c,
                    "lvs-director sends one burst of garp_count announcements on takeover, then one every garp_refresh",
                ),
                _ => self.vrrp_common(c),
            }
        }
        inst
    }

    /// Statements shared by `vrrp_instance` and `vrrp_sync_group`.
    fn vrrp_common(&mut self, c: &'n Node) {
        match c.kw() {
            "track_script" => self.track_script(c),
            "notify_master" => self.notify(c, |g| &mut g.active_cmd, "active_cmd"),
            "notify_backup" => self.notify(c, |g| &mut g.inactive_cmd, "inactive_cmd"),
            "notify" => {
                self.notify(c, |g| &mut g.notify_command, "notify_command");
                self.note(c, "`notify` imported as notify_command: lvs-director calls it with KIND NAME STATE, without keepalived's priority argument; check the script");
            }
            "notify_fault" => self.not_imported(
                c,
                "lvs-director has no FAULT state: a director that fails its link or local checks hands over and runs inactive_cmd",
            ),
            "notify_stop" | "notify_deleted" | "notify_master_rx_lower_pri" => {
                self.not_imported(c, "lvs-director runs only active_cmd, inactive_cmd and notify_command")
            }
            "smtp_alert" => self.not_imported(c, MAIL),
            "track_process" | "track_file" | "track_bfd" | "track_src_ip" => self.not_imported(
                c,
                "only programs can be tracked in lvs-director: write the test as a vrrp_script-style program (it becomes a local_check)",
            ),
            "virtual_routes" | "virtual_rules" | "static_routes" | "static_rules" => self.not_imported(
                c,
                "lvs-director moves addresses only: add the routes or rules in active_cmd/inactive_cmd",
            ),
            "use_vmac" | "vmac_xmit_base" | "use_ipvlan" => self.not_imported(
                c,
                "lvs-director keeps the directors' own MAC addresses and announces takeovers with gratuitous ARP",
            ),
            _ => self.not_imported(c, NOT_VRRP),
        }
    }

    fn notify(&mut self, c: &Node, slot: fn(&mut GlobalSettings) -> &mut Option<Text>, kw: &str) {
        let Some(cmd) = self.command(c, false) else {
            return;
        };
        let s = slot(&mut self.cfg.global);
        match s {
            Some(old) if *old != cmd => {
                let old = old.0.clone();
                self.note(
                    c,
                    format!("`{}` not imported: {kw} is already `{}` from an earlier vrrp_instance (all addresses fail over together in lvs-director)", c.kw(), shorten(&old)),
                );
            }
            _ => *s = Some(cmd),
        }
    }

    fn peers(&mut self, c: &'n Node, inst: &mut Instance<'n>) {
        if c.block.is_none() {
            return self.not_imported(c, "a block `{ … }` was expected");
        }
        for p in c.children() {
            match p.kw().parse::<IpAddr>() {
                Ok(ip) => {
                    if !p.args().is_empty() {
                        let rest = join_words(p.args());
                        self.note(
                            p,
                            format!("unicast peer {ip}: `{rest}` not imported: {NOT_VRRP}"),
                        );
                    }
                    inst.peers.push((ip, p));
                }
                Err(_) => self.bad_value(p, "not an IP address"),
            }
        }
    }

    fn track_script(&mut self, c: &'n Node) {
        if c.block.is_none() {
            // `track_script name` on one line is not keepalived syntax, but its meaning
            // is clear.
            for w in c.args() {
                self.tracked.push((w.text.clone(), None, c));
            }
            return;
        }
        for t in c.children() {
            let mut weight = None;
            let args = t.args();
            let mut i = 0;
            while i < args.len() {
                match (args[i].text.as_str(), args.get(i + 1)) {
                    ("weight", Some(v)) => {
                        match v.text.parse::<i64>() {
                            Ok(w) => weight = Some(w),
                            Err(_) => self.bad_value(t, "the weight is not a number"),
                        }
                        i += 2;
                    }
                    (w, _) => {
                        let w = w.to_string();
                        self.note(
                            t,
                            format!(
                                "`track_script {}`: `{w}` not imported: {NO_EQUIVALENT}",
                                t.kw()
                            ),
                        );
                        i += 1;
                    }
                }
            }
            self.tracked.push((t.kw().to_string(), weight, t));
        }
    }

    pub(super) fn sync_group(&mut self, n: &'n Node) {
        self.not_imported(
            n,
            "in lvs-director all addresses fail over together, as in one sync group",
        );
        for c in n.children() {
            match c.kw() {
                "group" => {}
                "track_interface" => {
                    self.cfg.global.monitor_links = Some(1);
                    self.note(c, "`track_interface` imported as monitor_links = 1: lvs-director watches all heartbeat and service links, not a list");
                }
                "global_tracking" | "sync_group_tracking_weight" => {}
                _ => self.vrrp_common(c),
            }
        }
    }

    /// The director pair and the addresses, from the VRRP instances.
    pub(super) fn ha(&mut self, instances: &[Instance<'n>]) {
        let Some(first) = instances.first() else {
            return;
        };
        let Some(first_node) = first.node else {
            return;
        };
        self.default_dev = instances.iter().find_map(|i| i.interface.clone());
        let g = &mut self.cfg.global;
        let advert = first.advert.map_or(Secs::from_secs(1), |(v, _)| v);
        let dead = Secs(advert.0.saturating_mul(3));
        g.keepalive = Some(advert);
        g.deadtime = Some(dead);
        let at = first.advert.map_or(first_node, |(_, n)| n);
        let what = if first.advert.is_some() {
            format!("`advert_int {advert}`")
        } else {
            format!("`vrrp_instance {}`", first.name)
        };
        self.note(
            at,
            format!("{what}: keepalive = {advert}; deadtime derived as 3×advert_int = {dead} s (keepalived's master-down interval without the priority skew)"),
        );
        self.roles(first, first_node);
        // keepalived clears both when the instance starts as MASTER ("will not work
        // with initial state MASTER - clearing").
        let starts_master = first.state.is_some_and(|(m, _)| m);
        let (nopreempt, preempt_delay) = if starts_master {
            for at in first
                .nopreempt
                .into_iter()
                .chain(first.preempt_delay.map(|(_, n)| n))
            {
                self.not_imported(
                    at,
                    "keepalived ignores it with `state MASTER` too (it needs state BACKUP)",
                );
            }
            (None, None)
        } else {
            (first.nopreempt, first.preempt_delay)
        };
        match (nopreempt, preempt_delay) {
            (Some(_), Some((_, pd))) => {
                self.cfg.global.preempt = Some(false);
                self.not_imported(pd, "nopreempt is set, so the delay has no effect");
            }
            (Some(_), None) => self.cfg.global.preempt = Some(false),
            (None, Some((v, _))) => self.cfg.global.preempt_delay = Some(v),
            (None, None) => {}
        }
        // keepalived puts an instance into FAULT when its interface goes down unless
        // `dont_track_primary` is set; monitor_links is lvs-director's equivalent.
        if instances
            .iter()
            .any(|i| i.tracks_links || (i.interface.is_some() && !i.dont_track_primary))
        {
            self.cfg.global.monitor_links = Some(1);
        }
        if let Some((v, _)) = first.garp_count {
            self.cfg.global.garp_count = Some(v);
        }
        if let Some((v, _)) = first.garp_refresh {
            self.cfg.global.garp_refresh = Some(v);
        }
        for inst in instances.iter().skip(1) {
            self.other_instance(first, inst);
        }
        for inst in instances {
            for v in &inst.vip_nodes {
                self.vip(v, inst);
            }
        }
    }

    fn roles(&mut self, first: &Instance<'n>, at: &Node) {
        let master = first.master();
        if let Some((false, state)) = first.state {
            self.note(state, "`state BACKUP`: this director is imported as the backup (`backup` = its address, `primary` = the peer)");
        }
        let local = first.src.or(first.mcast_src);
        for (ip, p) in first.peers.iter().skip(1) {
            let used = first.peers[0].0;
            self.note(p, format!("unicast peer {ip} not imported: lvs-director runs a pair of directors; the first peer ({used}) is used"));
        }
        let peer = first.peers.first().map(|(ip, _)| *ip);
        let (mine, theirs) = if master {
            ("primary", "backup")
        } else {
            ("backup", "primary")
        };
        let g = &mut self.cfg.global;
        let set = |g: &mut GlobalSettings, which: &str, ip: IpAddr| {
            if which == "primary" {
                g.primary = Some(Host::Ip(ip));
            } else {
                g.backup = Some(Host::Ip(ip));
            }
        };
        if let Some((ip, _)) = local {
            set(g, mine, ip);
        }
        if let Some(ip) = peer {
            set(g, theirs, ip);
        }
        match (local, peer) {
            (Some(_), Some(_)) => g.backup_active = Some(true),
            (None, Some(_)) => self.note(
                at,
                format!("`vrrp_instance {}`: no unicast_src_ip: set this director's own address as `{mine}`, then backup_active = 1", first.name),
            ),
            (_, None) => self.note(
                at,
                format!("`vrrp_instance {}`: multicast VRRP (no unicast_peer): lvs-director's heartbeat is unicast and needs the peer director's address: set `{theirs}`{}, then backup_active = 1", first.name, if local.is_none() { format!(" and `{mine}`") } else { String::new() }),
            ),
        }
    }

    fn other_instance(&mut self, first: &Instance<'n>, inst: &Instance<'n>) {
        let Some(n) = inst.node else {
            return;
        };
        let mut msg = format!(
            "`vrrp_instance {}`: a second VRRP instance: in lvs-director all addresses fail over together (one active/backup state per director pair); its addresses are imported with {}'s",
            inst.name, first.name
        );
        if inst.master() != first.master() {
            msg.push_str(&format!(
                "; it starts as {} where {} starts as {}, and that active-active split is lost",
                if inst.master() { "MASTER" } else { "BACKUP" },
                first.name,
                if first.master() { "MASTER" } else { "BACKUP" }
            ));
        }
        self.note(n, msg);
        let first_advert = first.advert.map_or(Secs::from_secs(1), |(v, _)| v);
        if let Some((v, at)) = inst.advert {
            if v != first_advert {
                self.not_imported(at, ONE_HEARTBEAT);
            }
        }
        if let Some(at) = inst.nopreempt {
            if first.nopreempt.is_none() {
                self.not_imported(at, ONE_HEARTBEAT);
            }
        }
        if let Some((v, at)) = inst.preempt_delay {
            if first.preempt_delay.map(|(f, _)| f) != Some(v) {
                self.not_imported(at, ONE_HEARTBEAT);
            }
        }
        let g = &self.cfg.global;
        let differs = [
            inst.garp_count
                .filter(|(v, _)| g.garp_count != Some(*v))
                .map(|(_, at)| at),
            inst.garp_refresh
                .filter(|(v, _)| g.garp_refresh != Some(*v))
                .map(|(_, at)| at),
        ];
        for at in differs.into_iter().flatten() {
            self.not_imported(at, ONE_HEARTBEAT);
        }
        let first_src = first.src.map(|(ip, _)| ip);
        let first_peer = first.peers.first().map(|(ip, _)| *ip);
        // Another network between the same two directors is what Piranha's private
        // addresses are: a second heartbeat path.
        let g = &mut self.cfg.global;
        let mut private = None;
        if let (Some((src, at)), Some(&(peer, _))) = (inst.src, inst.peers.first()) {
            if g.backup_active == Some(true)
                && g.primary_private.is_none()
                && first_src != Some(src)
                && first_peer != Some(peer)
                && first_src.is_some_and(|f| f.is_ipv6() == src.is_ipv6())
            {
                let (p, b) = if first.master() {
                    (src, peer)
                } else {
                    (peer, src)
                };
                g.primary_private = Some(Host::Ip(p));
                g.backup_private = Some(Host::Ip(b));
                private = Some(peer);
                self.note(at, format!("`unicast_src_ip {src}` and unicast peer {peer} of {}: imported as the second heartbeat path (primary_private = {p}, backup_private = {b})", inst.name));
            }
        }
        if let Some((ip, at)) = inst.src {
            if first_src != Some(ip) && private.is_none() {
                self.not_imported(at, ONE_HEARTBEAT);
            }
        }
        for (ip, at) in &inst.peers {
            if first_peer != Some(*ip) && private != Some(*ip) {
                self.note(
                    at,
                    format!("unicast peer {ip} not imported: {ONE_HEARTBEAT}"),
                );
            }
        }
    }

    /// One `virtual_ipaddress` entry: `IP[/PREFIX] [dev DEV] [label LABEL] [brd …] …`.
    fn vip(&mut self, n: &'n Node, inst: &Instance<'n>) {
        let first = n.kw();
        let (addr_s, prefix_s) = match first.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (first, None),
        };
        let Ok(addr) = addr_s.parse::<IpAddr>() else {
            return self.bad_value(n, "not an IP address");
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_s.map(str::parse::<u8>) {
            None => None,
            Some(Ok(p)) if p <= max => Some(p),
            Some(_) => return self.bad_value(n, "the prefix length is invalid"),
        };
        let args = n.args();
        let mut dev = None;
        let mut label = None;
        let mut dropped = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let w = args[i].text.as_str();
            let v = args.get(i + 1).map(|a| a.text.as_str());
            match (w, v) {
                ("dev", Some(v)) => dev = Some(v.to_string()),
                ("label", Some(v)) => label = Some(v.to_string()),
                (
                    "brd" | "broadcast" | "scope" | "preferred_lft" | "track_group" | "metric",
                    Some(v),
                ) => dropped.push(format!("{w} {v}")),
                _ => {
                    dropped.push(w.to_string());
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        if !dropped.is_empty() {
            self.note(
                n,
                format!("virtual address {first}: `{}` not imported: lvs-director raises an address with its prefix and device only", shorten(&dropped.join(" "))),
            );
        }
        let base = match dev.or_else(|| inst.interface.clone()) {
            Some(d) => d,
            None => {
                self.note(n, format!("virtual address {first}: no device given and no interface in vrrp_instance {}: eth0 assumed; check `address`", inst.name));
                "eth0".to_string()
            }
        };
        let mut device = base.clone();
        if let Some(l) = label {
            // Linux labels must start with the device name; Piranha's `eth0:1` form is
            // exactly such a label.
            if l.starts_with(&format!("{base}:")) && l.len() <= 15 && writable_word(&l) {
                device = l;
            } else {
                self.note(n, format!("virtual address {first}: `label {l}` not imported: a label must be the device name, a colon and at most 15 characters in all (e.g. {base}:1)"));
            }
        }
        let ad = AddrDev {
            addr: Host::Ip(addr),
            device,
        };
        if ad.unwritable().is_some() {
            return self.bad_value(n, "the device is not an interface name");
        }
        if let Some(other) = self.vips.iter().find(|v| v.addr == addr) {
            let inst_name = other.instance.clone();
            self.note(n, format!("virtual address {first} not imported: already an address of vrrp_instance {inst_name}"));
            return;
        }
        self.vips.push(Vip {
            addr,
            prefix,
            dev: ad.device,
            instance: inst.name.clone(),
            node: n,
            used: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn vrrp_roles_follow_the_state() {
        let conf = |state: &str| {
            format!("vrrp_instance V {{\n state {state}\n interface eth0\n unicast_src_ip 10.0.0.2\n unicast_peer {{ 10.0.0.3 }}\n virtual_ipaddress {{ 10.0.0.100/24 }}\n}}\n")
        };
        let m = imp(&conf("MASTER")).config.global;
        assert_eq!(m.primary, Some(Host::Ip("10.0.0.2".parse().unwrap())));
        assert_eq!(m.backup, Some(Host::Ip("10.0.0.3".parse().unwrap())));
        assert_eq!(m.backup_active, Some(true));
        let b = imp(&conf("BACKUP")).config.global;
        assert_eq!(b.primary, Some(Host::Ip("10.0.0.3".parse().unwrap())));
        assert_eq!(b.backup, Some(Host::Ip("10.0.0.2".parse().unwrap())));
        // The address owner (priority 255) starts as MASTER without `state`.
        let o = imp("vrrp_instance V {\n priority 255\n unicast_src_ip 10.0.0.2\n unicast_peer { 10.0.0.3 }\n}\n");
        assert_eq!(
            o.config.global.primary,
            Some(Host::Ip("10.0.0.2".parse().unwrap()))
        );
    }

    #[test]
    fn instance_settings_override_global_ones_and_the_first_instance_wins() {
        let r = imp("global_defs {\n vrrp_garp_master_repeat 3\n}\nvrrp_instance A {\n state BACKUP\n nopreempt\n garp_master_repeat 8\n notify_master /bin/a\n}\nvrrp_instance B {\n state BACKUP\n garp_master_repeat 2\n notify_master /bin/b\n}\n");
        let g = &r.config.global;
        assert_eq!(g.garp_count, Some(8));
        assert_eq!(g.preempt, Some(false));
        assert_eq!(g.active_cmd, Some(Text("/bin/a".into())));
        assert!(has(
            &r.warnings,
            "keepalived.conf:12: `garp_master_repeat` not imported: lvs-director has one heartbeat"
        ));
        assert!(has(
            &r.warnings,
            "keepalived.conf:13: `notify_master` not imported: active_cmd is already `/bin/a`"
        ));
        assert!(!has(&r.warnings, "keepalived.conf:7:"));
        // keepalived clears nopreempt and preempt_delay when the instance starts as MASTER.
        let r = imp("vrrp_instance A {\n state MASTER\n nopreempt\n preempt_delay 5\n}\n");
        assert_eq!(r.config.global.preempt, None);
        assert_eq!(r.config.global.preempt_delay, None);
        assert!(has(&r.warnings, "keepalived.conf:3: `nopreempt` not imported: keepalived ignores it with `state MASTER` too"));
    }
}

//! `vrrp_instance` and `vrrp_sync_group` → `vrrp NAME { … }` blocks, keyword for
//! keyword: lvs-director speaks keepalived's VRRP, so an instance keeps its router id,
//! priority, timers, authentication, peers, addresses with their options, trackers,
//! sync group and notify commands. The VRRP addresses are also remembered for the
//! virtual servers (their device) and fwmark services (their address).

use std::collections::HashSet;
use std::net::IpAddr;

use super::report::{MAIL, NO_EQUIVALENT};
use super::tree::{join_words, Node};
use super::values::{block_name, unique_name, writable_word};
use super::Importer;
use crate::config::model::*;
use crate::config::value::*;
use crate::config::vrrp::{IpList, Track, TrackList, Vip as VrrpVip, VipList};

/// A VRRP address (`virtual_ipaddress` entry), for the virtual servers.
pub(super) struct Vip<'n> {
    pub(super) addr: IpAddr,
    pub(super) prefix: Option<u8>,
    pub(super) dev: String,
    pub(super) instance: String,
    pub(super) node: &'n Node,
    pub(super) used: bool,
}

/// A `vrrp_instance` read, waiting for the scripts and sync groups to be known.
pub(super) struct Instance<'n> {
    /// keepalived's name.
    name: String,
    settings: VrrpSettings,
    /// `track_script` entries by the script's keepalived name.
    scripts: Vec<(Track, &'n Node)>,
    /// The `advert_int` statement, for the note when it is rounded.
    advert_at: Option<&'n Node>,
}

/// What `global_defs` gives every instance that does not set it (its `vrrp_garp_*`).
#[derive(Default)]
pub(super) struct Defaults<'n> {
    pub(super) garp_master_delay: Option<Secs>,
    pub(super) garp_master_repeat: Option<u32>,
    pub(super) garp_master_refresh: Option<Secs>,
    pub(super) garp_lower_prio_repeat: Option<u32>,
    /// `vrrp_garp_interval`, which `vrrp` blocks have no use for.
    pub(super) garp_interval_at: Option<&'n Node>,
}

impl<'n> Importer<'n> {
    pub(super) fn instance(&mut self, n: &'n Node) -> Instance<'n> {
        let name = n
            .args()
            .first()
            .map_or_else(|| "VI".to_string(), |w| w.text.clone());
        let mut st = VrrpSettings {
            active: Some(true),
            ..Default::default()
        };
        let mut scripts = Vec::new();
        let mut advert_at = None;
        let mut addresses: Vec<(&'n Node, bool)> = Vec::new();
        for c in n.children() {
            match c.kw() {
                "state" => match self.one_arg(c).map(str::to_ascii_uppercase).as_deref() {
                    Some("MASTER") => st.state = Some(VrrpState::Master),
                    Some("BACKUP") => st.state = Some(VrrpState::Backup),
                    Some(_) => self.bad_value(c, "MASTER or BACKUP expected (keepalived starts it as BACKUP)"),
                    None => {}
                },
                "interface" => {
                    if let Some(s) = self.one_arg(c) {
                        if writable_word(s) {
                            st.interface = Some(Word(s.to_string()));
                        } else {
                            self.bad_value(c, "not an interface name");
                        }
                    }
                }
                "virtual_router_id" => match self.arg_u32(c) {
                    Some(v @ 1..=255) => {
                        st.virtual_router_id = Some(v as u8);
                        self.vrids.insert(name.clone(), v);
                    }
                    Some(_) => self.bad_value(c, "a virtual router id is 1 to 255"),
                    None => {}
                },
                "priority" => match self.arg_u32(c) {
                    Some(v @ 1..=255) => st.priority = Some(v as u8),
                    Some(_) => self.bad_value(c, "a priority is 1 to 255"),
                    None => {}
                },
                "advert_int" => {
                    st.advert_int = self.arg_timer(c);
                    advert_at = Some(c);
                }
                "version" => match self.arg_u32(c) {
                    Some(2) => st.version = Some(VrrpVersion::V2),
                    Some(3) => st.version = Some(VrrpVersion::V3),
                    Some(_) => self.bad_value(c, "VRRP version 2 or 3 expected"),
                    None => {}
                },
                "authentication" => self.authentication(c, &mut st),
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    if c.block.is_some() {
                        let excluded = c.kw() == "virtual_ipaddress_excluded";
                        addresses.extend(c.children().iter().map(|a| (a, excluded)));
                    } else {
                        self.not_imported(c, "a block `{ … }` was expected");
                    }
                }
                "nopreempt" => st.preempt = Some(false),
                "preempt" => {}
                "preempt_delay" => st.preempt_delay = self.arg_timer(c),
                "unicast_src_ip" | "mcast_src_ip" => {
                    match self.one_arg(c).map(str::parse::<IpAddr>) {
                        Some(Ok(ip)) => st.unicast_src_ip = Some(ip),
                        Some(Err(_)) => self.bad_value(c, "not an IP address"),
                        None => {}
                    }
                }
                "unicast_peer" => st.unicast_peer = self.peers(c),
                "track_interface" => {
                    let tracks = self.tracks(c);
                    let list = st.track_interface.get_or_insert_with(|| TrackList(Vec::new()));
                    list.0.extend(tracks.into_iter().map(|(t, _)| t));
                }
                "track_script" => {
                    for (t, at) in self.tracks(c) {
                        self.tracked.push((t.name.clone(), t.weight.map(i64::from), at));
                        scripts.push((t, at));
                    }
                }
                "dont_track_primary" => self.not_imported(
                    c,
                    "lvs-director always tracks the instance's interface: a director that cannot send adverts must not keep the addresses",
                ),
                "lvs_sync_daemon_interface" => {
                    if let Some(s) = self.one_arg(c) {
                        self.set_sync_iface(c, s.to_string());
                        st.lvs_sync_daemon = Some(true);
                    }
                }
                "garp_master_delay" => st.garp_master_delay = self.arg_timer(c),
                "garp_master_repeat" => st.garp_master_repeat = self.arg_u32(c),
                "garp_master_refresh" => st.garp_master_refresh = self.arg_timer(c),
                "garp_lower_prio_repeat" => st.garp_lower_prio_repeat = self.arg_u32(c),
                "garp_master_refresh_repeat" | "garp_lower_prio_delay" => self.not_imported(
                    c,
                    "lvs-director announces once per refresh, and at once when it hears a lower priority",
                ),
                "down_timer_adverts" => match self.arg_u32(c) {
                    Some(v @ 1..=100) => st.down_timer_adverts = Some(v),
                    Some(_) => self.bad_value(c, "1 to 100 expected"),
                    None => {}
                },
                "notify_master" => st.notify_master = self.command(c, false),
                "notify_backup" => st.notify_backup = self.command(c, false),
                "notify_fault" => st.notify_fault = self.command(c, false),
                "notify" => st.notify = self.command(c, false),
                _ => self.vrrp_unsupported(c),
            }
        }
        let interface = st.interface.as_ref().map(|w| w.0.clone());
        for (a, excluded) in addresses {
            if let Some(v) = self.vip(a, &name, interface.as_deref()) {
                let slot = if excluded {
                    &mut st.virtual_ipaddress_excluded
                } else {
                    &mut st.virtual_ipaddress
                };
                slot.get_or_insert_with(|| VipList(Vec::new())).0.push(v);
            }
        }
        if self.default_dev.is_none() {
            self.default_dev = interface;
        }
        Instance {
            name,
            settings: st,
            scripts,
            advert_at,
        }
    }

    /// keepalived rounds an interval the version cannot carry (whole seconds for
    /// version 2, centiseconds for 3) to the nearest it can, at least one unit.
    fn round_advert(&mut self, st: &mut VrrpSettings, at: Option<&Node>) {
        let Some(int) = st.advert_int else {
            return;
        };
        let unit = match st.version(&self.cfg.global) {
            VrrpVersion::V2 => 1000,
            VrrpVersion::V3 => 10,
        };
        let ms = int.millis();
        if ms % unit == 0 && ms > 0 {
            return;
        }
        let rounded = Secs(((ms + unit / 2) / unit).max(1) * unit);
        st.advert_int = Some(rounded);
        if let Some(at) = at {
            self.note(
                at,
                format!("`advert_int {int}` imported as {rounded}: keepalived rounds it so for VRRP version {} too", if unit == 1000 { 2 } else { 3 }),
            );
        }
    }

    /// What lvs-director's VRRP does not do, each with its reason.
    fn vrrp_unsupported(&mut self, c: &Node) {
        let why = match c.kw() {
            "notify_stop" | "notify_deleted" | "notify_master_rx_lower_pri" => {
                "lvs-director runs notify_master, notify_backup, notify_fault and notify (which is told STOP)"
            }
            "smtp_alert" => MAIL,
            "track_process" | "track_file" | "track_bfd" | "track_src_ip" => {
                "only local checks and interfaces can be tracked: write the test as a vrrp_script-style program (it becomes a local_check)"
            }
            "virtual_routes" | "virtual_rules" | "static_routes" | "static_rules" => {
                "lvs-director moves addresses only: add the routes or rules in notify_master / notify_backup"
            }
            "use_vmac" | "vmac_xmit_base" | "use_ipvlan" => {
                "VMAC is not supported: the master announces the addresses with its own MAC address (gratuitous ARP / NA)"
            }
            "strict_mode" => "strict mode is not supported (lvs-director checks adverts as keepalived does without it)",
            _ => NO_EQUIVALENT,
        };
        self.not_imported(c, why);
    }

    /// `authentication { auth_type PASS; auth_pass SECRET }`.
    fn authentication(&mut self, c: &Node, st: &mut VrrpSettings) {
        if c.block.is_none() {
            return self.not_imported(c, "a block `{ … }` was expected");
        }
        for a in c.children() {
            match (a.kw(), self.one_arg(a)) {
                ("auth_type", Some(t)) if t.eq_ignore_ascii_case("PASS") => {
                    st.auth_type = Some(VrrpAuth::Pass)
                }
                ("auth_type", Some(t)) if t.eq_ignore_ascii_case("AH") => self.not_imported(
                    a,
                    "IPsec AH authentication is not supported; without it adverts are not authenticated",
                ),
                ("auth_type", Some(_)) => self.bad_value(a, "PASS or AH expected"),
                ("auth_pass", Some(p)) => {
                    if writable_word(p) {
                        st.auth_pass = Some(Word(p.to_string()));
                    } else {
                        self.bad_value(a, "the password cannot be written in lvs.cf");
                    }
                }
                (_, None) => {}
                _ => self.not_imported(a, NO_EQUIVALENT),
            }
        }
    }

    fn peers(&mut self, c: &Node) -> Option<IpList> {
        if c.block.is_none() {
            self.not_imported(c, "a block `{ … }` was expected");
            return None;
        }
        let mut peers = Vec::new();
        for p in c.children() {
            match p.kw().parse::<IpAddr>() {
                Ok(ip) => {
                    if !p.args().is_empty() {
                        let rest = join_words(p.args());
                        self.note(
                            p,
                            format!("unicast peer {ip}: `{rest}` not imported: {NO_EQUIVALENT}"),
                        );
                    }
                    peers.push(ip);
                }
                Err(_) => self.bad_value(p, "not an IP address"),
            }
        }
        Some(IpList(peers))
    }

    /// `track_interface` / `track_script` entries: `NAME [weight N [reverse]]`, in a
    /// block or (not keepalived's syntax, but clear) on the line.
    fn tracks(&mut self, c: &'n Node) -> Vec<(Track, &'n Node)> {
        if c.block.is_none() {
            return c
                .args()
                .iter()
                .map(|w| {
                    let t = Track {
                        name: w.text.clone(),
                        weight: None,
                        reverse: false,
                    };
                    (t, c)
                })
                .collect();
        }
        let mut out = Vec::new();
        for t in c.children() {
            let text = std::iter::once(t.kw().to_string())
                .chain(t.args().iter().map(|w| w.text.clone()))
                .collect::<Vec<_>>()
                .join(" ");
            match Track::parse_text(&text) {
                Ok(tr) => out.push((tr, t)),
                Err(e) => self.bad_value(t, &e),
            }
        }
        out
    }

    /// One `virtual_ipaddress` entry: `IP[/PREFIX] [dev DEV] [label LABEL] [scope S]
    /// [brd IP] …`. Options lvs-director does not apply are reported and left out.
    fn vip(&mut self, n: &'n Node, instance: &str, interface: Option<&str>) -> Option<VrrpVip> {
        let args = n.args();
        let mut kept = vec![n.kw().to_string()];
        let mut dropped = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let w = args[i].text.as_str();
            match (w, args.get(i + 1)) {
                ("dev" | "label" | "scope" | "brd" | "broadcast", Some(v)) => {
                    kept.push(format!("{w} {}", v.text));
                    i += 2;
                }
                ("preferred_lft" | "track_group" | "metric", Some(v)) => {
                    dropped.push(format!("{w} {}", v.text));
                    i += 2;
                }
                _ => {
                    dropped.push(w.to_string());
                    i += 1;
                }
            }
        }
        if !dropped.is_empty() {
            self.note(
                n,
                format!(
                    "virtual address {}: `{}` not imported: lvs-director applies dev, label, scope and brd",
                    n.kw(),
                    dropped.join(" ")
                ),
            );
        }
        let mut v = match VrrpVip::parse_text(&kept.join(" ")) {
            Ok(v) => v,
            Err(e) => {
                self.bad_value(n, &e);
                return None;
            }
        };
        let base = v
            .dev
            .clone()
            .or_else(|| interface.map(str::to_string))
            .unwrap_or_else(|| "eth0".to_string());
        if let Some(l) = v.label.clone() {
            // The rule `ip` applies (and lvs-director with it): the device's name, or
            // the name, a colon and more, 15 characters in all.
            let fits = (l == base || l.starts_with(&format!("{base}:"))) && l.len() <= 15;
            if !fits || !writable_word(&l) {
                v.label = None;
                self.note(n, format!("virtual address {}: `label {l}` not imported: a label must be the device name, a colon and at most 15 characters in all (e.g. {base}:1)", v.addr));
            }
        }
        if let Some(other) = self.vips.iter().find(|x| x.addr == v.addr) {
            let inst_name = other.instance.clone();
            self.note(
                n,
                format!(
                    "virtual address {} not imported: already an address of vrrp_instance {inst_name}",
                    v.addr
                ),
            );
            return None;
        }
        // A virtual server names the address with Piranha's `eth0:1` form when the
        // label is one.
        let dev = match &v.label {
            Some(l) if l.starts_with(&format!("{base}:")) => l.clone(),
            _ => base,
        };
        self.vips.push(Vip {
            addr: v.addr,
            prefix: v.prefix,
            dev,
            instance: instance.to_string(),
            node: n,
            used: false,
        });
        Some(v)
    }

    /// `vrrp_sync_group NAME { group { A B … } }`: each member gets `sync_group`.
    pub(super) fn sync_group(&mut self, n: &'n Node) {
        let Some(name) = n.args().first().map(|w| w.text.clone()) else {
            return self.not_imported(n, "the sync group has no name");
        };
        for c in n.children() {
            match c.kw() {
                "group" => {
                    for m in c.children() {
                        for inst in std::iter::once(m.kw()).chain(m.args().iter().map(|w| w.text.as_str())) {
                            if let Some((other, _)) = self.sync_groups.get(inst) {
                                let other = other.clone();
                                self.note(m, format!("`{inst}` not put in sync group {name}: it is in sync group {other} already (keepalived refuses it too)"));
                            } else {
                                self.sync_groups.insert(inst.to_string(), (name.clone(), m));
                            }
                        }
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify" | "notify_stop"
                | "track_interface" | "track_script" | "track_file" | "track_process"
                | "track_bfd" => self.not_imported(
                    c,
                    "a sync group's own trackers and notify commands are not supported: set them on its instances",
                ),
                "smtp_alert" => self.not_imported(c, MAIL),
                _ => self.not_imported(c, NO_EQUIVALENT),
            }
        }
    }

    /// The `vrrp` blocks, once the scripts (their local_check names) and sync groups are
    /// known.
    pub(super) fn vrrp_blocks(&mut self, instances: Vec<Instance<'n>>) {
        let mut taken: HashSet<String> = HashSet::new();
        let mut seen: HashSet<String> = HashSet::new();
        for inst in instances {
            let Instance {
                name,
                mut settings,
                scripts,
                advert_at,
            } = inst;
            self.round_advert(&mut settings, advert_at);
            let block = unique_name(block_name(&name, "vrrp"), &taken);
            taken.insert(block.clone());
            let tracked: Vec<Track> = scripts
                .into_iter()
                .filter_map(|(t, _)| {
                    let local = self.script_blocks.get(&t.name)?;
                    Some(Track {
                        name: local.clone(),
                        ..t
                    })
                })
                .collect();
            if !tracked.is_empty() {
                settings.track_script = Some(TrackList(tracked));
            }
            if let Some((group, _)) = self.sync_groups.get(&name) {
                settings.sync_group = Some(Word(block_name(group, "group")));
            }
            let d = &self.vrrp_defaults;
            settings.garp_master_delay = settings.garp_master_delay.or(d.garp_master_delay);
            settings.garp_master_repeat = settings.garp_master_repeat.or(d.garp_master_repeat);
            settings.garp_master_refresh = settings.garp_master_refresh.or(d.garp_master_refresh);
            settings.garp_lower_prio_repeat =
                settings.garp_lower_prio_repeat.or(d.garp_lower_prio_repeat);
            seen.insert(name.clone());
            self.cfg.vrrp.push(VrrpInstance {
                name: block,
                settings,
                comments: Comments::default(),
            });
        }
        let missing: Vec<(String, String, &Node)> = self
            .sync_groups
            .iter()
            .filter(|(inst, _)| !seen.contains(*inst))
            .map(|(inst, (group, at))| (inst.clone(), group.clone(), *at))
            .collect();
        for (inst, group, at) in missing {
            self.note(
                at,
                format!("sync group {group}: there is no vrrp_instance {inst}"),
            );
        }
        if self.cfg.vrrp.is_empty() {
            return;
        }
        // The heartbeat's announcement settings have become the instances'.
        self.cfg.global.garp_count = None;
        self.cfg.global.garp_refresh = None;
        if let Some(at) = self.vrrp_defaults.garp_interval_at {
            self.cfg.global.garp_interval = None;
            self.not_imported(
                at,
                "vrrp blocks spread each burst of announcements over garp_master_delay",
            );
        }
    }

    /// Which `vrrp` block each keepalived instance became (for `lvs_sync_daemon`).
    pub(super) fn vrrp_block_of(&self, instance: &str) -> Option<usize> {
        let name = block_name(instance, "vrrp");
        self.cfg.vrrp.iter().position(|v| v.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn every_supported_keyword_lands_in_the_block_without_a_warning() {
        let r = imp("global_defs {\n vrrp_version 3\n vrrp_garp_master_delay 2\n}\n\
vrrp_script chk_nginx {\n script \"/etc/lvs-director/scripts/chk_nginx\"\n weight -30\n}\n\
vrrp_sync_group G1 {\n group {\n VI_web\n VI_db\n }\n}\n\
vrrp_instance VI_web {\n state MASTER\n interface eth0\n virtual_router_id 51\n priority 150\n advert_int 0.1\n\
 unicast_src_ip 10.0.0.1\n unicast_peer {\n 10.0.0.2\n }\n\
 virtual_ipaddress {\n 192.0.2.100/24\n 192.0.2.101/24 dev eth2 label eth2:vip scope global brd 192.0.2.255\n }\n\
 virtual_ipaddress_excluded {\n 2001:db8::100/64\n }\n\
 track_interface {\n eth0\n eth2 weight -20\n }\n track_script {\n chk_nginx\n }\n\
 notify_master \"/etc/lvs-director/scripts/notify master\"\n notify_fault /etc/lvs-director/scripts/fault\n notify /etc/lvs-director/scripts/all\n\
 garp_master_repeat 3\n garp_lower_prio_repeat 1\n down_timer_adverts 5\n}\n\
vrrp_instance VI_db {\n state BACKUP\n interface eth0\n virtual_router_id 52\n priority 100\n advert_int 2\n version 2\n nopreempt\n\
 authentication {\n auth_type PASS\n auth_pass secret12\n }\n virtual_ipaddress {\n 192.0.2.110/24\n }\n}\n");
        assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
        let c = &r.config;
        assert_eq!(c.global.vrrp_version, Some(VrrpVersion::V3));
        assert_eq!(c.global.backup_active, None, "no heartbeat pair");
        let web = &c.vrrp[0].settings;
        assert_eq!(c.vrrp[0].name, "VI_web");
        assert_eq!(
            (web.state, web.virtual_router_id, web.priority),
            (Some(VrrpState::Master), Some(51), Some(150))
        );
        assert_eq!(web.advert_int, Some(Secs(100)));
        assert_eq!(web.unicast_src_ip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            web.virtual_ipaddress.as_ref().unwrap().0[1].to_string(),
            "192.0.2.101/24 dev eth2 label eth2:vip scope global brd 192.0.2.255"
        );
        assert_eq!(
            web.virtual_ipaddress_excluded.as_ref().unwrap().0[0].to_string(),
            "2001:db8::100/64"
        );
        assert_eq!(
            web.track_interface.as_ref().unwrap().0[1].to_string(),
            "eth2 weight -20"
        );
        assert_eq!(web.track_script.as_ref().unwrap().0[0].name, "chk_nginx");
        assert_eq!(c.local_checks[0].settings.weight, Some(-30));
        assert_eq!(web.sync_group, Some(Word("G1".into())));
        assert_eq!(
            web.notify_master,
            Some(Text("/etc/lvs-director/scripts/notify master".into()))
        );
        assert!(web.notify_fault.is_some() && web.notify.is_some());
        assert_eq!(
            (web.garp_master_delay, web.garp_master_repeat),
            (Some(Secs::from_secs(2)), Some(3))
        );
        assert_eq!(
            (web.garp_lower_prio_repeat, web.down_timer_adverts),
            (Some(1), Some(5))
        );
        let db = &c.vrrp[1].settings;
        assert_eq!(
            (db.version, db.preempt, db.auth_type),
            (Some(VrrpVersion::V2), Some(false), Some(VrrpAuth::Pass))
        );
        assert_eq!(db.auth_pass, Some(Word("secret12".into())));
        assert_eq!(db.sync_group, Some(Word("G1".into())));
        assert_eq!(
            db.garp_master_delay,
            Some(Secs::from_secs(2)),
            "global_defs default"
        );
    }

    #[test]
    fn what_lvs_director_does_not_do_is_said_where_it_is_written() {
        let r = imp("vrrp_instance V {\n interface eth0\n virtual_router_id 300\n use_vmac\n authentication {\n auth_type AH\n }\n dont_track_primary\n virtual_ipaddress {\n 192.0.2.1/24 dev eth0 preferred_lft 0\n }\n track_script {\n nope weight 9 bogus\n }\n}\n");
        for want in [
            "keepalived.conf:3: `virtual_router_id 300` not imported: a virtual router id is 1 to 255",
            "keepalived.conf:4: `use_vmac` not imported: VMAC is not supported",
            "keepalived.conf:6: `auth_type` not imported: IPsec AH authentication is not supported",
            "keepalived.conf:8: `dont_track_primary` not imported: lvs-director always tracks the instance's interface",
            "keepalived.conf:10: virtual address 192.0.2.1/24: `preferred_lft 0` not imported",
            "keepalived.conf:13: `nope weight 9 bogus` not imported: `bogus`: only `reverse` may follow the weight",
        ] {
            assert!(has(&r.warnings, want), "{want}\n{:#?}", r.warnings);
        }
        let v = &r.config.vrrp[0].settings;
        assert_eq!(
            v.virtual_ipaddress.as_ref().unwrap().0[0].to_string(),
            "192.0.2.1/24 dev eth0"
        );
    }
}

//! From a `vrrp` block to what runs: the state machine's [`Settings`] and the addresses
//! the instance raises when master. Pure: the interface's own address (the source of
//! adverts when `unicast_src_ip` is not set) is a fact handed in.

use std::net::IpAddr;

use super::instance::Settings;
use super::packet::{Auth, Version};
use super::track::{Subject, Tracker, Tracking};
use crate::config::model::{Config, VrrpInstance};
use crate::config::value::{VrrpAuth, VrrpState, VrrpVersion};
use crate::pulse::logic::ha::HaConfig;
use crate::pulse::logic::node::{NodePlan, Place, Vip};

/// One instance, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePlan {
    pub settings: Settings,
    /// The interface adverts use.
    pub interface: String,
    /// Where adverts go: the unicast peers, or empty for the group.
    pub peers: Vec<IpAddr>,
    /// Every address raised on the master (advertised and excluded), with its device.
    pub vips: Vec<Vip>,
    /// What moves its priority or puts it in FAULT.
    pub tracking: Tracking,
}

impl InstancePlan {
    /// What the instance's activation task needs (the addresses, their announcement,
    /// the sync daemon when `lvs_sync_daemon` names this instance), in the shape the
    /// heartbeat's activation task takes; the heartbeat fields are unused.
    pub fn activation(&self, inst: &VrrpInstance, sync: Option<(String, u8)>) -> NodePlan {
        let st = &inst.settings;
        let refresh = st.garp_master_refresh().millis();
        NodePlan {
            place: Place::Standalone,
            name: format!("vrrp {}", inst.name),
            ha: HaConfig {
                name: inst.name.clone(),
                primary: false,
                priority: self.settings.priority,
                keepalive_ms: u64::from(self.settings.interval_cs) * 10,
                deadtime_ms: 0,
                preempt: self.settings.preempt,
                preempt_delay_ms: self.settings.preempt_delay_us / 1000,
                serial: 0,
            },
            heartbeat_port: 0,
            peers: Vec::new(),
            vips: self.vips.clone(),
            sync: sync.filter(|_| st.lvs_sync_daemon()),
            watched_links: Vec::new(),
            garp_count: st.garp_master_repeat(),
            // keepalived sends a burst at once and a second after garp_master_delay;
            // the activation task's burst spreads the same count over that delay.
            garp_interval_ms: (st.garp_master_delay().millis()
                / u64::from(st.garp_master_repeat().max(1)))
            .max(1),
            garp_refresh_ms: refresh,
            garp_lower_count: st.garp_lower_prio_repeat(),
        }
    }
}

/// The plan of `inst`. `source`: the interface's address of the instance's family,
/// used when `unicast_src_ip` is not set.
pub fn instance_plan(config: &Config, inst: &VrrpInstance, source: IpAddr) -> InstancePlan {
    let global = &config.global;
    let st = &inst.settings;
    let interface = st
        .interface
        .as_ref()
        .map(|w| w.0.clone())
        .unwrap_or_default();
    let version = match st.version(global) {
        VrrpVersion::V2 => Version::V2,
        VrrpVersion::V3 => Version::V3,
    };
    let auth = match (st.auth_type(), &st.auth_pass) {
        (VrrpAuth::Pass, Some(p)) if version == Version::V2 => Auth::pass(p.0.as_bytes()),
        _ => Auth::None,
    };
    let initial_master = st.state() == VrrpState::Master;
    let priority = st.priority();
    // keepalived clears nopreempt and preempt_delay with state MASTER, and nopreempt
    // for the address owner; validation warns about both.
    let preempt = st.preempt() || initial_master || priority == 255;
    let preempt_delay_us = if initial_master {
        0
    } else {
        st.preempt_delay().millis() * 1000
    };
    let advertised: Vec<&crate::config::vrrp::Vip> = st
        .virtual_ipaddress
        .iter()
        .flat_map(|l| l.0.iter())
        .collect();
    let excluded = st
        .virtual_ipaddress_excluded
        .iter()
        .flat_map(|l| l.0.iter());
    let vips = advertised
        .iter()
        .copied()
        .chain(excluded)
        .map(|v| Vip {
            addr: v.addr,
            prefix: v.prefix_len(),
            device: v.dev.clone().unwrap_or_else(|| interface.clone()),
            label: v.label.clone(),
            owners: vec![format!("vrrp {}", inst.name)],
            scope: v.scope.map(|s| s.rt_scope()),
            broadcast: v.brd,
        })
        .collect();
    let peers: Vec<IpAddr> = st.unicast_peer.iter().flat_map(|l| l.0.clone()).collect();
    let tracker = |subject: Subject, t: &crate::config::vrrp::Track, default: i32| Tracker {
        subject,
        weight: t.weight.unwrap_or(default),
        reverse: t.reverse,
    };
    let links = st
        .track_interface
        .iter()
        .flat_map(|l| l.0.iter())
        .map(|t| tracker(Subject::Link(t.name.clone()), t, 0));
    let scripts = st.track_script.iter().flat_map(|l| l.0.iter()).map(|t| {
        // A track_script without its own weight takes the check's (keepalived's
        // vrrp_script weight).
        let default = config
            .local_checks
            .iter()
            .find(|c| c.name == t.name)
            .map_or(0, |c| c.settings.weight());
        tracker(Subject::Check(t.name.clone()), t, default)
    });
    let tracking = Tracking {
        base: priority,
        interface: interface.clone(),
        trackers: links.chain(scripts).collect(),
    };
    InstancePlan {
        settings: Settings {
            name: inst.name.clone(),
            version,
            vrid: st.virtual_router_id.unwrap_or(0),
            priority,
            interval_cs: (st.advert_int().millis() / 10).min(u64::from(u16::MAX)) as u16,
            initial_master,
            preempt,
            preempt_delay_us,
            down_timer_adverts: st.down_timer_adverts(),
            advert_copies: st.advert_copies(),
            addresses: advertised.iter().map(|v| v.addr).collect(),
            auth,
            unicast: !peers.is_empty(),
            source: st.unicast_src_ip.unwrap_or(source),
            in_sync_group: st.sync_group.is_some(),
        },
        interface,
        peers,
        vips,
        tracking,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn plan_of(text: &str) -> InstancePlan {
        let c = parse(text).unwrap().config;
        instance_plan(&c, &c.vrrp[0], "10.0.0.1".parse().unwrap())
    }

    #[test]
    fn a_block_becomes_the_machine_settings_and_the_addresses() {
        let p = plan_of(
            "vrrp VI_1 {\n active = 1\n interface = eth0\n virtual_router_id = 51\n priority = 150\n advert_int = 2\n auth_type = pass\n auth_pass = secret1234\n virtual_ipaddress = [ 192.0.2.100/24 \"192.0.2.101 dev eth1 label eth1:1\" ]\n virtual_ipaddress_excluded = [ 2001:db8::1/64 ]\n}\n",
        );
        let s = &p.settings;
        assert_eq!(
            (s.version, s.vrid, s.priority, s.interval_cs),
            (Version::V2, 51, 150, 200)
        );
        assert_eq!(s.auth, Auth::pass(b"secret12"));
        assert_eq!(s.addresses.len(), 2);
        assert_eq!(s.source, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert!(!s.unicast && s.preempt && !s.initial_master);
        assert_eq!(p.vips.len(), 3);
        assert_eq!((p.vips[0].prefix, p.vips[0].device.as_str()), (24, "eth0"));
        assert_eq!(
            (
                p.vips[1].prefix,
                p.vips[1].device.as_str(),
                p.vips[1].label.as_deref()
            ),
            (32, "eth1", Some("eth1:1"))
        );
        assert_eq!(p.vips[2].prefix, 64);
        let p = plan_of("vrrp V {\n interface = eth0\n virtual_ipaddress = [ \"192.0.2.10/24 scope link brd 192.0.2.127\" ]\n}\n");
        assert_eq!(
            (p.vips[0].scope, p.vips[0].broadcast),
            (Some(253), Some("192.0.2.127".parse().unwrap()))
        );
    }

    #[test]
    fn keepalived_clears_nopreempt_and_the_delay_for_an_initial_master() {
        let p = plan_of("vrrp V {\n state = master\n preempt = 0\n preempt_delay = 3\n version = 3\n advert_int = 0.05\n unicast_src_ip = 10.0.0.9\n unicast_peer = [ 10.0.0.2 ]\n}\n");
        assert!(p.settings.preempt && p.settings.initial_master);
        assert_eq!(p.settings.preempt_delay_us, 0);
        assert_eq!(p.settings.interval_cs, 5);
        assert!(p.settings.unicast);
        assert_eq!(p.settings.source, "10.0.0.9".parse::<IpAddr>().unwrap());
        let p = plan_of("vrrp V {\n preempt = 0\n preempt_delay = 3\n}\n");
        assert!(!p.settings.preempt);
        assert_eq!(p.settings.preempt_delay_us, 3_000_000);
    }

    #[test]
    fn track_script_takes_the_checks_weight_unless_it_sets_its_own() {
        use crate::pulse::logic::vrrp::track::{Subject, Tracker};
        let p = plan_of("local_check chk_a {\n weight = -30\n}\nlocal_check chk_b {\n weight = 5\n}\nvrrp V {\n interface = eth0\n priority = 90\n track_script = [ chk_a \"chk_b weight 7 reverse\" chk_none ]\n track_interface = [ \"eth1 weight -20\" eth2 ]\n}\n");
        let t = &p.tracking;
        assert_eq!((t.base, t.interface.as_str()), (90, "eth0"));
        let tr = |s: Subject, weight: i32, reverse: bool| Tracker {
            subject: s,
            weight,
            reverse,
        };
        assert_eq!(
            t.trackers,
            vec![
                tr(Subject::Link("eth1".into()), -20, false),
                tr(Subject::Link("eth2".into()), 0, false),
                tr(Subject::Check("chk_a".into()), -30, false),
                tr(Subject::Check("chk_b".into()), 7, true),
                tr(Subject::Check("chk_none".into()), 0, false),
            ]
        );
    }
}

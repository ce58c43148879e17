//! Rules for `vrrp NAME { … }` blocks: what keepalived 2.2.7 refuses or silently
//! changes is an error or a warning here, said where it is written.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{writable, V};
use crate::config::diag::Scope;
use crate::config::model::{Config, VrrpInstance};
use crate::config::value::{Secs, VrrpAuth, VrrpState, VrrpVersion};

pub(super) fn check(v: &mut V) {
    let c: &Config = v.c;
    for (i, inst) in c.vrrp.iter().enumerate() {
        instance(v, i, inst);
    }
    across(v, c);
}

fn instance(v: &mut V, i: usize, inst: &VrrpInstance) {
    let s = Scope::Vrrp(i);
    let st = &inst.settings;
    writable(v, s, &st.unwritable(), &inst.comments);
    let active = st.active();
    if active && st.interface.is_none() {
        v.error(
            s,
            Some("interface"),
            "an active instance needs the interface its adverts use",
        );
    }
    match st.virtual_router_id {
        None if active => v.error(
            s,
            Some("virtual_router_id"),
            "an active instance needs a virtual router id (1 to 255)",
        ),
        Some(0) => v.error(
            s,
            Some("virtual_router_id"),
            "0 is not a virtual router id (1 to 255)",
        ),
        _ => {}
    }
    if st.priority == Some(0) {
        v.error(
            s,
            Some("priority"),
            "priority 0 is reserved for a master that stops (1 to 255)",
        );
    }
    let version = st.version(&v.c.global);
    let int = st.advert_int();
    match version {
        VrrpVersion::V2 => {
            if int.millis() % 1000 != 0 || int.is_zero() || int > Secs::from_secs(255) {
                v.error(
                    s,
                    Some("advert_int"),
                    format!("version 2 advertises whole seconds from 1 to 255, not {int} (use version = 3 for shorter intervals)"),
                );
            }
        }
        VrrpVersion::V3 => {
            if int.millis() % 10 != 0 || int < Secs(10) || int > Secs(40_950) {
                v.error(
                    s,
                    Some("advert_int"),
                    format!(
                        "version 3 advertises 0.01 to 40.95 seconds in steps of 0.01, not {int}"
                    ),
                );
            }
        }
    }
    let vips = st
        .virtual_ipaddress
        .as_ref()
        .map(|l| &l.0[..])
        .unwrap_or(&[]);
    if vips.is_empty() && active {
        v.error(
            s,
            Some("virtual_ipaddress"),
            "an active instance needs at least one virtual address (its adverts carry them)",
        );
    }
    let six = st.is_ipv6();
    if let Some(bad) = vips.iter().find(|x| x.addr.is_ipv6() != six) {
        v.error(
            s,
            Some("virtual_ipaddress"),
            format!(
                "{} is not of the instance's family ({}): put it in virtual_ipaddress_excluded",
                bad.addr,
                if six { "IPv6" } else { "IPv4" }
            ),
        );
    }
    for x in vips.iter().chain(
        st.virtual_ipaddress_excluded
            .as_ref()
            .map(|l| &l.0[..])
            .unwrap_or(&[]),
    ) {
        if x.addr.is_unspecified() || x.addr.is_multicast() {
            v.error(
                s,
                Some("virtual_ipaddress"),
                format!("{} cannot be a virtual address", x.addr),
            );
        }
        if let Some(l) = &x.label {
            let dev = x
                .dev
                .as_deref()
                .or(st.interface.as_ref().map(|w| w.0.as_str()))
                .unwrap_or_default();
            if !(l == dev || l.starts_with(&format!("{dev}:"))) || l.len() > 15 {
                v.error(
                    s,
                    Some("virtual_ipaddress"),
                    format!("{}: label {l} must be the device name ({dev}) or start with it and a colon, 15 characters in all", x.addr),
                );
            }
        }
    }
    if six && st.version == Some(VrrpVersion::V2) {
        v.error(
            s,
            Some("version"),
            "IPv6 needs version 3 (keepalived speaks version 3 for IPv6 whatever is set)",
        );
    }
    match (st.auth_type(), &st.auth_pass) {
        (VrrpAuth::Pass, None) => v.error(
            s,
            Some("auth_pass"),
            "auth_type = pass needs the password",
        ),
        (VrrpAuth::Pass, Some(_)) if version == VrrpVersion::V3 => v.error(
            s,
            Some("auth_type"),
            "version 3 has no authentication (keepalived refuses it too)",
        ),
        (VrrpAuth::Pass, Some(p)) if p.0.len() > 8 => v.warn(
            s,
            Some("auth_pass"),
            "only the first 8 characters are used, as in keepalived",
        ),
        (VrrpAuth::Pass, Some(_)) => v.warn(
            s,
            Some("auth_type"),
            "PASS authentication sends the password in clear in every advert: it protects against nothing but a neighbour's mistake",
        ),
        (VrrpAuth::None, Some(_)) => v.warn(
            s,
            Some("auth_pass"),
            "ignored without auth_type = pass",
        ),
        (VrrpAuth::None, None) => {}
    }
    if st.state() == VrrpState::Master {
        if st.preempt == Some(false) {
            v.warn(
                s,
                Some("preempt"),
                "preempt = 0 does not work with state = master and is ignored (as keepalived does): use state = backup",
            );
        }
        if st.preempt_delay().millis() > 0 {
            v.warn(
                s,
                Some("preempt_delay"),
                "preempt_delay does not work with state = master and is ignored (as keepalived does): use state = backup",
            );
        }
    }
    if st.preempt_delay() > Secs::from_secs(1000) {
        v.error(
            s,
            Some("preempt_delay"),
            "at most 1000 seconds (keepalived's limit)",
        );
    }
    if st.priority() == 255 && st.preempt == Some(false) {
        v.warn(
            s,
            Some("preempt"),
            "the address owner (priority 255) always preempts; preempt = 0 is ignored",
        );
    }
    let downs = st.down_timer_adverts();
    if !(1..=100).contains(&downs) {
        v.error(s, Some("down_timer_adverts"), "1 to 100");
    }
    if !(1..=4).contains(&st.advert_copies()) {
        v.error(s, Some("advert_copies"), "1 to 4");
    }
    let family_of = |a: &IpAddr| a.is_ipv6() == six;
    if let Some(src) = &st.unicast_src_ip {
        if !family_of(src) {
            v.error(
                s,
                Some("unicast_src_ip"),
                "not of the instance's address family",
            );
        }
    }
    if let Some(peers) = &st.unicast_peer {
        if let Some(p) = peers.0.iter().find(|p| !family_of(p)) {
            v.error(
                s,
                Some("unicast_peer"),
                format!("{p} is not of the instance's address family"),
            );
        }
        if peers.0.is_empty() {
            v.warn(
                s,
                Some("unicast_peer"),
                "an empty list: adverts are multicast",
            );
        }
    }
    for t in st.track_script.iter().flat_map(|l| &l.0) {
        if !v.c.local_checks.iter().any(|l| l.name == t.name) {
            v.error(
                s,
                Some("track_script"),
                format!("no local_check named `{}`", t.name),
            );
        }
    }
}

/// Rules between instances and with the rest of the file.
fn across(v: &mut V, c: &Config) {
    let active: Vec<(usize, &VrrpInstance)> = c
        .vrrp
        .iter()
        .enumerate()
        .filter(|(_, i)| i.settings.active())
        .collect();
    if active.is_empty() {
        return;
    }
    // Two instances with one router id on one link would answer each other's adverts.
    let mut ids: BTreeMap<(String, u8, bool), &str> = BTreeMap::new();
    for (i, inst) in &active {
        let st = &inst.settings;
        if let (Some(dev), Some(id)) = (&st.interface, st.virtual_router_id) {
            if let Some(other) = ids.insert((dev.0.clone(), id, st.is_ipv6()), &inst.name) {
                v.error(
                    Scope::Vrrp(*i),
                    Some("virtual_router_id"),
                    format!("vrrp {other} uses router id {id} on {} too", dev.0),
                );
            }
        }
    }
    if c.global.backup_active() {
        v.error(
            Scope::Global,
            Some("backup_active"),
            "the heartbeat pair and VRRP instances exclude each other: set backup_active = 0 to use VRRP, or deactivate the vrrp blocks",
        );
    }
    let syncd: Vec<&str> = active
        .iter()
        .filter(|(_, i)| i.settings.lvs_sync_daemon())
        .map(|(_, i)| i.name.as_str())
        .collect();
    if syncd.len() > 1 {
        v.error(
            Scope::Global,
            None,
            format!(
                "lvs_sync_daemon is set on several instances ({}): the sync daemon follows one",
                syncd.join(", ")
            ),
        );
    }
    // A virtual server's address is raised by the instance that lists it; one that no
    // instance lists is never raised (keepalived behaves the same).
    let listed: Vec<IpAddr> = active
        .iter()
        .flat_map(|(_, i)| {
            let s = &i.settings;
            s.virtual_ipaddress
                .iter()
                .chain(s.virtual_ipaddress_excluded.iter())
                .flat_map(|l| l.0.iter().map(|x| x.addr))
        })
        .collect();
    for (i, f) in c.floating.iter().enumerate() {
        if let (true, Some(crate::config::value::Host::Ip(a))) = (
            f.settings.active.unwrap_or(false),
            f.settings.address.as_ref().map(|a| &a.addr),
        ) {
            if !listed.contains(a) {
                v.warn(
                    Scope::Floating(i),
                    Some("address"),
                    format!(
                        "{a} is not raised under VRRP: list it in an instance's virtual_ipaddress"
                    ),
                );
            }
        }
    }
    let g = &c.global;
    for (kw, set) in [
        ("active_cmd", g.active_cmd.is_some()),
        ("inactive_cmd", g.inactive_cmd.is_some()),
        ("nat_router", g.nat_router.is_some()),
    ] {
        if set {
            v.warn(
                Scope::Global,
                Some(kw),
                "not used under VRRP (each instance has its own addresses and notify_master / notify_backup)",
            );
        }
    }
    for (i, vs) in c.virtuals.iter().enumerate() {
        if !vs.settings.active() {
            continue;
        }
        if let Some(crate::config::value::Host::Ip(a)) =
            vs.settings.address.as_ref().map(|a| &a.addr)
        {
            if !listed.contains(a) {
                v.warn(
                    Scope::Virtual(i),
                    Some("address"),
                    format!("{a} is in no active vrrp instance's virtual_ipaddress: no director raises it"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, validate, Severity};

    /// The messages of a file's diagnostics, errors first marked `E:`, warnings `W:`.
    fn said(text: &str) -> Vec<String> {
        let p = parse(text).unwrap();
        validate(&p.config)
            .into_iter()
            .map(|d| {
                let mark = if d.severity == Severity::Error {
                    "E"
                } else {
                    "W"
                };
                format!("{mark}: {}", d.message)
            })
            .collect()
    }

    const GOOD: &str = "\
local_check chk_nginx {
    active = 1
    check = program
    send_program = /etc/lvs-director/scripts/chk_nginx
    weight = -30
}
vrrp VI_1 {
    active = 1
    interface = eth0
    virtual_router_id = 51
    priority = 150
    advert_int = 1
    virtual_ipaddress = [ 192.0.2.100/24 \"192.0.2.101/24 dev eth1 label eth1:1\" ]
    track_script = [ chk_nginx ]
}
";

    #[test]
    fn a_keepalived_like_instance_is_valid() {
        let d = said(GOOD);
        assert!(d.iter().all(|m| m.starts_with("W:")), "{d:#?}");
    }

    #[test]
    fn what_keepalived_refuses_is_an_error_where_it_is_written() {
        let with = |from: &str, to: &str| said(&GOOD.replace(from, to));
        let has = |d: Vec<String>, want: &str| {
            assert!(d.iter().any(|m| m == want), "{want:?} not in {d:#?}");
        };
        has(
            with("    interface = eth0\n", ""),
            "E: vrrp VI_1: `interface`: an active instance needs the interface its adverts use",
        );
        has(
            with("virtual_router_id = 51", "virtual_router_id = 0"),
            "E: vrrp VI_1: `virtual_router_id`: 0 is not a virtual router id (1 to 255)",
        );
        has(
            with("priority = 150", "priority = 0"),
            "E: vrrp VI_1: `priority`: priority 0 is reserved for a master that stops (1 to 255)",
        );
        has(
            with("advert_int = 1", "advert_int = 0.5"),
            "E: vrrp VI_1: `advert_int`: version 2 advertises whole seconds from 1 to 255, not 0.5 (use version = 3 for shorter intervals)",
        );
        assert!(!with("advert_int = 1", "advert_int = 0.5\n    version = 3")
            .iter()
            .any(|m| m.starts_with("E:")));
        has(
            with("advert_int = 1", "advert_int = 0.005\n    version = 3"),
            "E: vrrp VI_1: `advert_int`: version 3 advertises 0.01 to 40.95 seconds in steps of 0.01, not 0.005",
        );
        has(
            with("192.0.2.100/24 ", "192.0.2.100/24 2001:db8::1 "),
            "E: vrrp VI_1: `virtual_ipaddress`: 2001:db8::1 is not of the instance's family (IPv4): put it in virtual_ipaddress_excluded",
        );
        has(
            with(
                "track_script = [ chk_nginx ]",
                "track_script = [ chk_apache ]",
            ),
            "E: vrrp VI_1: `track_script`: no local_check named `chk_apache`",
        );
        has(
            with("advert_int = 1", "advert_int = 1\n    auth_type = pass"),
            "E: vrrp VI_1: `auth_pass`: auth_type = pass needs the password",
        );
        has(
            with("advert_int = 1", "advert_int = 1\n    version = 3\n    auth_type = pass\n    auth_pass = secret"),
            "E: vrrp VI_1: `auth_type`: version 3 has no authentication (keepalived refuses it too)",
        );
        has(
            with("priority = 150", "priority = 150\n    state = master\n    preempt = 0"),
            "W: vrrp VI_1: `preempt`: preempt = 0 does not work with state = master and is ignored (as keepalived does): use state = backup",
        );
        has(
            said(&format!(
                "backup_active = 1\nbackup = 10.0.0.2\nprimary = 10.0.0.1\n{GOOD}"
            )),
            "E: `backup_active`: the heartbeat pair and VRRP instances exclude each other: set backup_active = 0 to use VRRP, or deactivate the vrrp blocks",
        );
        let twice = format!(
            "{GOOD}{}",
            GOOD.split("vrrp VI_1")
                .nth(1)
                .map(|b| format!("vrrp VI_2{b}"))
                .unwrap()
        );
        has(
            said(&twice),
            "E: vrrp VI_2: `virtual_router_id`: vrrp VI_1 uses router id 51 on eth0 too",
        );
    }

    #[test]
    fn a_virtual_server_outside_every_instance_is_never_raised() {
        let text = format!(
            "{GOOD}virtual web {{\n    active = 1\n    address = 192.0.2.200 eth0\n    port = 80\n}}\n"
        );
        let d = said(&text);
        assert!(
            d.contains(&"W: virtual web: `address`: 192.0.2.200 is in no active vrrp instance's virtual_ipaddress: no director raises it".to_string()),
            "{d:#?}"
        );
    }
}

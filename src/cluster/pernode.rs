//! What differs between the directors of a pair, and is therefore never synced: the
//! settings below. Everything else in `lvs.cf` is shared. Pure.
//!
//! - `heartbeat_key_file`: a path on this machine (the key itself must be the same).
//! - In each `vrrp` block: `state`, `priority`, `unicast_src_ip`, `unicast_peer`: which
//!   director is master by preference, and which address each one speaks from and to.
//!
//! Heartbeat pairs have none besides the key file: `primary` and `backup` name both
//! directors in one text, and each finds itself by its addresses.
//!
//! A received configuration keeps the receiver's own values ([`merge`]). A `vrrp`
//! block the receiver does not have yet has no values of its own: it takes the
//! sender's, mirrored where that is what a pair means (the sender's unicast source
//! becomes a peer, this director's address among the peers becomes the source), as
//! `backup` one priority below the sender's, so that the director where it was created
//! stays master. Each such derivation is reported, to be checked on the VRRP page.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::config::value::VrrpState;
use crate::config::vrrp::IpList;
use crate::config::{render_with_serial, Config};

/// The per-node keywords of the global section.
pub const GLOBAL: &[&str] = &["heartbeat_key_file"];
/// The per-node keywords of a `vrrp` block.
pub const VRRP: &[&str] = &["state", "priority", "unicast_src_ip", "unicast_peer"];

/// `config` without its per-node settings (nor their comments): what both directors
/// share.
pub fn shared(config: &Config) -> Config {
    let mut c = config.clone();
    c.global.heartbeat_key_file = None;
    for k in GLOBAL {
        c.comments.0.remove(*k);
    }
    for i in &mut c.vrrp {
        let s = &mut i.settings;
        s.state = None;
        s.priority = None;
        s.unicast_src_ip = None;
        s.unicast_peer = None;
        for k in VRRP {
            i.comments.0.remove(*k);
        }
    }
    c
}

/// The digest of `config`'s shared part at `serial`: equal on both directors exactly
/// when they run the same configuration, whatever their own settings. SHA-256 of the
/// rendering, first 16 bytes in hex.
pub fn digest(config: &Config, serial: u32) -> String {
    let text = render_with_serial(&shared(config), serial);
    Sha256::digest(text.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A received configuration with this director's own settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub config: Config,
    /// What was derived rather than kept, one sentence each.
    pub derived: Vec<String>,
}

/// `received` with the per-node settings of `local` (the configuration in force
/// here); `is_local` tells this director's addresses.
pub fn merge(received: &Config, local: &Config, is_local: &dyn Fn(IpAddr) -> bool) -> Merged {
    let mut config = received.clone();
    let mut derived = Vec::new();
    config.global.heartbeat_key_file = local.global.heartbeat_key_file.clone();
    copy_comments(&mut config.comments, &local.comments, GLOBAL);
    for i in &mut config.vrrp {
        let s = &mut i.settings;
        if let Some(mine) = local.vrrp.iter().find(|l| l.name == i.name) {
            let m = &mine.settings;
            s.state = m.state;
            s.priority = m.priority;
            s.unicast_src_ip = m.unicast_src_ip;
            s.unicast_peer = m.unicast_peer.clone();
            copy_comments(&mut i.comments, &mine.comments, VRRP);
            continue;
        }
        let mut said = Vec::new();
        if s.state == Some(VrrpState::Master) {
            said.push("state backup".to_string());
        }
        s.state = None;
        let theirs = s.priority.unwrap_or(100);
        let ours = theirs.saturating_sub(1).max(1);
        if ours != 100 {
            s.priority = Some(ours);
        } else {
            s.priority = None;
        }
        said.push(format!("priority {ours} (the peer's is {theirs})"));
        if let Some(peers) = &s.unicast_peer {
            let me = peers.0.iter().copied().find(|a| is_local(*a));
            let mut mirrored: Vec<IpAddr> =
                peers.0.iter().copied().filter(|a| Some(*a) != me).collect();
            if let Some(src) = s.unicast_src_ip {
                if !mirrored.contains(&src) {
                    mirrored.insert(0, src);
                }
            }
            s.unicast_src_ip = me;
            said.push(format!(
                "unicast_peer [ {} ]{}",
                mirrored
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                me.map(|a| format!(", unicast_src_ip {a}"))
                    .unwrap_or_default()
            ));
            s.unicast_peer = Some(IpList(mirrored));
        }
        derived.push(format!(
            "vrrp {} is new on this director: {} were derived from the peer's; check them on the VRRP page",
            i.name,
            said.join(", ")
        ));
    }
    Merged { config, derived }
}

fn copy_comments(to: &mut crate::config::Comments, from: &crate::config::Comments, keys: &[&str]) {
    for k in keys {
        match from.0.get(*k) {
            Some(lines) => {
                to.0.insert(k.to_string(), lines.clone());
            }
            None => {
                to.0.remove(*k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    const A: &str = "serial_no = 4
heartbeat_key_file = /etc/a.key
vrrp VI_1 {
    active = 1
    interface = eth0
    state = master
    priority = 150
    virtual_router_id = 51
    unicast_src_ip = 10.0.0.1
    unicast_peer = [ 10.0.0.2 ]
    virtual_ipaddress = [ 192.0.2.10/24 ]
}
virtual www {
    active = 1
    address = 192.0.2.10 eth0
    port = 80
}
";

    fn b() -> String {
        A.replace("/etc/a.key", "/etc/b.key")
            .replace("state = master", "state = backup")
            .replace("priority = 150", "priority = 100")
            .replace("unicast_src_ip = 10.0.0.1", "unicast_src_ip = 10.0.0.2")
            .replace("[ 10.0.0.2 ]", "[ 10.0.0.1 ]")
    }

    fn cfg(t: &str) -> Config {
        parse(t).unwrap().config
    }

    #[test]
    fn the_digest_ignores_per_node_settings_and_sees_the_rest() {
        let (a, b) = (cfg(A), cfg(&b()));
        assert_ne!(a, b);
        assert_eq!(digest(&a, 4), digest(&b, 4));
        assert_ne!(digest(&a, 4), digest(&a, 5), "the serial is part of it");
        let mut c = b.clone();
        c.virtuals[0].settings.port = Some(crate::config::value::PortSpec::Number(81));
        assert_ne!(digest(&a, 4), digest(&c, 4));
        assert_eq!(digest(&a, 4).len(), 32);
    }

    #[test]
    fn a_received_configuration_keeps_this_directors_own_settings() {
        let mut sent = cfg(A);
        sent.virtuals[0].settings.port = Some(crate::config::value::PortSpec::Number(8080));
        let here = cfg(&b());
        let m = merge(&sent, &here, &|a| {
            a == "10.0.0.2".parse::<IpAddr>().unwrap()
        });
        assert!(m.derived.is_empty(), "{:?}", m.derived);
        assert_eq!(
            m.config.global.heartbeat_key_file,
            here.global.heartbeat_key_file
        );
        assert_eq!(m.config.vrrp[0].settings, here.vrrp[0].settings);
        assert_eq!(
            m.config.virtuals[0].settings.port,
            sent.virtuals[0].settings.port
        );
        assert_eq!(digest(&m.config, 9), digest(&sent, 9));
    }

    #[test]
    fn a_new_vrrp_block_takes_the_senders_values_mirrored_as_backup() {
        let sent = cfg(A);
        let mut here = cfg(&b());
        here.vrrp.clear();
        let m = merge(&sent, &here, &|a| {
            a == "10.0.0.2".parse::<IpAddr>().unwrap()
        });
        let s = &m.config.vrrp[0].settings;
        assert_eq!(s.state, None, "backup, the default");
        assert_eq!(s.priority, Some(149));
        assert_eq!(s.unicast_src_ip, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(
            s.unicast_peer,
            Some(IpList(vec!["10.0.0.1".parse().unwrap()]))
        );
        assert_eq!(m.derived.len(), 1);
        assert!(m.derived[0].contains("vrrp VI_1 is new"), "{:?}", m.derived);
        assert!(m.derived[0].contains("priority 149"), "{:?}", m.derived);
        assert_eq!(digest(&m.config, 4), digest(&sent, 4));
    }
}

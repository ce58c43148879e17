//! Who this director syncs with, read from the configuration in force: the other of
//! `primary` and `backup` for a heartbeat pair, the `unicast_peer`s of the active
//! `vrrp` blocks for a VRRP group. Nothing else to set up. Pure: this machine's
//! addresses and the names' addresses come in as functions.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::value::Host;
use crate::config::Config;

/// A peer director, by the addresses it can be reached at (in order of preference:
/// its public address, then its private one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// As `lvs.cf` names it: what the pages and the revisions call it.
    pub name: String,
    pub addrs: Vec<IpAddr>,
}

/// Sync as the configuration in force has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// A director without peers: nothing to sync, nothing to warn about.
    Alone(String),
    /// Off although there are peers, and why: the standing warning.
    Off(String),
    On {
        key_file: String,
        peers: Vec<Peer>,
        /// How often each peer is asked what it runs.
        every: Duration,
    },
}

/// The reason sync is off without a key, as `status` and the pages say it.
pub const NO_KEY: &str = "configuration sync is off: no heartbeat_key_file is set (configuration never travels unauthenticated); set the same key on every director to keep their configurations in step";

/// How sync runs under `config` on the director with the addresses `is_local`.
pub fn plan(
    config: &Config,
    is_local: &dyn Fn(IpAddr) -> bool,
    resolve: &dyn Fn(&Host) -> Option<IpAddr>,
) -> Plan {
    let g = &config.global;
    let every = g
        .keepalive
        .map(|s| Duration::from_millis(s.millis()))
        .unwrap_or(Duration::from_secs(2))
        .min(Duration::from_secs(1));
    let peers = if config.uses_vrrp() {
        let mut peers: Vec<Peer> = Vec::new();
        for i in config.vrrp.iter().filter(|i| i.settings.active()) {
            for a in i.settings.unicast_peer.iter().flat_map(|l| l.0.iter()) {
                if !is_local(*a) && !peers.iter().any(|p| p.addrs == [*a]) {
                    peers.push(Peer {
                        name: a.to_string(),
                        addrs: vec![*a],
                    });
                }
            }
        }
        if peers.is_empty() {
            return Plan::Alone("configuration sync is off: the vrrp blocks name no unicast_peer (multicast VRRP does not say who the peers are); list the other directors in unicast_peer".into());
        }
        peers
    } else if g.backup_active.unwrap_or(false) {
        let addr = |h: &Option<Host>| h.as_ref().and_then(resolve);
        let (primary, backup) = (addr(&g.primary), addr(&g.backup));
        let private =
            |h: &Option<Host>, public: Option<IpAddr>| addr(h).filter(|a| Some(*a) != public);
        let (peer, peer_private, name) = if primary.is_some_and(is_local) {
            (backup, private(&g.backup_private, backup), &g.backup)
        } else if backup.is_some_and(is_local) {
            (primary, private(&g.primary_private, primary), &g.primary)
        } else {
            return Plan::Off("configuration sync is off: neither primary nor backup is an address of this director".into());
        };
        let Some(peer) = peer else {
            return Plan::Off(
                "configuration sync is off: the peer's address does not resolve".into(),
            );
        };
        vec![Peer {
            name: name.as_ref().map_or(peer.to_string(), ToString::to_string),
            addrs: std::iter::once(peer).chain(peer_private).collect(),
        }]
    } else {
        return Plan::Alone("configuration sync is off: this director has no peer (backup_active = 0 and no vrrp block)".into());
    };
    let Some(key_file) = g.heartbeat_key_file.as_ref().map(|w| w.0.clone()) else {
        return Plan::Off(NO_KEY.into());
    };
    Plan::On {
        key_file,
        peers,
        every,
    }
}

/// Whether `addr` is this machine's: binding to it succeeds. Needs neither a
/// privilege nor netlink (the admin UI has neither).
pub fn is_local(addr: IpAddr) -> bool {
    std::net::UdpSocket::bind((addr, 0)).is_ok()
}

/// A host's address: itself, or the first its name resolves to.
pub fn resolve(host: &Host) -> Option<IpAddr> {
    use std::net::ToSocketAddrs;
    match host {
        Host::Ip(a) => Some(*a),
        Host::Name(n) => (n.as_str(), 0)
            .to_socket_addrs()
            .ok()?
            .next()
            .map(|s| s.ip()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn at(text: &str, me: &str) -> Plan {
        let c = parse(text).unwrap().config;
        let me: IpAddr = me.parse().unwrap();
        plan(&c, &|a| a == me, &|h| match h {
            Host::Ip(a) => Some(*a),
            Host::Name(_) => None,
        })
    }

    const PAIR: &str = "serial_no = 1\nprimary = 10.0.0.1\nprimary_private = 10.1.0.1\nbackup_active = 1\nbackup = 10.0.0.2\nbackup_private = 10.1.0.2\nkeepalive = 0.5\nheartbeat_key_file = /k\n";

    #[test]
    fn a_heartbeat_pair_syncs_with_the_other_director() {
        let Plan::On { peers, every, .. } = at(PAIR, "10.0.0.1") else {
            panic!()
        };
        assert_eq!(every, Duration::from_millis(500));
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].name, "10.0.0.2");
        assert_eq!(
            peers[0].addrs,
            [
                "10.0.0.2".parse::<IpAddr>().unwrap(),
                "10.1.0.2".parse().unwrap()
            ]
        );
        let Plan::On { peers, every, .. } = at(
            &PAIR.replace("keepalive = 0.5", "keepalive = 2"),
            "10.0.0.2",
        ) else {
            panic!()
        };
        assert_eq!(peers[0].name, "10.0.0.1");
        assert_eq!(every, Duration::from_secs(1), "at most a second");
        assert!(
            matches!(at(PAIR, "10.0.0.9"), Plan::Off(w) if w.contains("neither primary nor backup"))
        );
    }

    #[test]
    fn without_a_key_or_a_peer_sync_is_off_and_says_why() {
        assert_eq!(
            at(&PAIR.replace("heartbeat_key_file = /k\n", ""), "10.0.0.1"),
            Plan::Off(NO_KEY.into())
        );
        assert!(matches!(
            at(&PAIR.replace("backup_active = 1", "backup_active = 0"), "10.0.0.1"),
            Plan::Alone(w) if w.contains("no peer")
        ));
    }

    #[test]
    fn a_vrrp_group_syncs_with_its_unicast_peers() {
        let v = "serial_no = 1\nheartbeat_key_file = /k\nvrrp VI_1 {\nactive = 1\ninterface = eth0\nvirtual_router_id = 5\nunicast_peer = [ 10.0.0.2 10.0.0.3 10.0.0.1 ]\nvirtual_ipaddress = [ 192.0.2.1 ]\n}\n";
        let Plan::On { peers, .. } = at(v, "10.0.0.1") else {
            panic!()
        };
        let names: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["10.0.0.2", "10.0.0.3"]);
        assert!(matches!(
            at(&v.replace("unicast_peer = [ 10.0.0.2 10.0.0.3 10.0.0.1 ]\n", ""), "10.0.0.1"),
            Plan::Alone(w) if w.contains("unicast_peer")
        ));
    }
}

//! The passes that need every block read first: fwmark services get the VRRP address
//! they can only be, the most common forwarding method becomes global, unused VRRP
//! addresses become `nat_router` or floating addresses, and a header comment says
//! where the file came from.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use super::tree::shorten;
use super::values::{block_name, unique_name};
use super::vrrp::Vip;
use super::Importer;
use crate::config::model::*;
use crate::config::value::*;

/// Whether `a` lies in `net/prefix`.
fn in_subnet(a: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (a, net, bits) = match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let host_bits = bits - u32::from(prefix).min(bits);
    if host_bits >= 128 {
        return true;
    }
    (a >> host_bits) == (net >> host_bits)
}

impl<'n> Importer<'n> {
    /// A fwmark service has no address in keepalived; lvs-director needs the address to
    /// raise. Take the VRRP address it can only be.
    pub(super) fn fwmark_addresses(&mut self) {
        let pending = std::mem::take(&mut self.fwmark_pending);
        for (i, n) in pending {
            let Some(vs) = self.cfg.virtuals.get(i) else {
                continue;
            };
            let mark = vs.settings.fwmark();
            let six = vs
                .servers
                .iter()
                .find_map(|s| s.settings.address.as_ref()?.ip())
                .map(|ip| ip.is_ipv6());
            let family = |v: &Vip| six.is_none_or(|six| v.addr.is_ipv6() == six);
            let unused: Vec<usize> = (0..self.vips.len())
                .filter(|&j| !self.vips[j].used && family(&self.vips[j]))
                .collect();
            let (cands, why) = if unused.is_empty() {
                (
                    (0..self.vips.len())
                        .filter(|&j| family(&self.vips[j]))
                        .collect::<Vec<_>>(),
                    "the only VRRP address",
                )
            } else {
                (unused, "the only VRRP address no other virtual_server uses")
            };
            if let [j] = cands[..] {
                let v = &mut self.vips[j];
                v.used = true;
                let (addr, dev, prefix) = (v.addr, v.dev.clone(), v.prefix);
                let st = &mut self.cfg.virtuals[i].settings;
                st.address = Some(AddrDev {
                    addr: Host::Ip(addr),
                    device: dev.clone(),
                });
                st.vip_nmask = prefix.map(Netmask);
                self.note(
                    n,
                    format!("`virtual_server fwmark {mark}`: address = {addr} {dev}, {why}; check that it is the address whose traffic is marked {mark}"),
                );
            } else {
                self.cfg.virtuals[i].settings.active = Some(false);
                let which = if cands.is_empty() {
                    "no VRRP address fits"
                } else {
                    "several VRRP addresses could be it"
                };
                self.note(
                    n,
                    format!("`virtual_server fwmark {mark}`: imported with active = 0: set `address` (the address whose traffic is marked {mark}; {which}) before activating it"),
                );
            }
        }
    }

    /// The most common forwarding method becomes the global `network`; virtual servers
    /// keep their own only when it differs.
    pub(super) fn forwarding(&mut self) {
        let mut counts: Vec<(Forwarding, usize)> = Vec::new();
        for v in &self.cfg.virtuals {
            let f = v.settings.forwarding.unwrap_or(Forwarding::Nat);
            match counts.iter_mut().find(|(g, _)| *g == f) {
                Some((_, n)) => *n += 1,
                None => counts.push((f, 1)),
            }
        }
        let mut best: Option<(Forwarding, usize)> = None;
        for &(f, n) in &counts {
            if best.is_none_or(|(_, b)| n > b) {
                best = Some((f, n));
            }
        }
        let Some((network, _)) = best else {
            return;
        };
        self.cfg.global.network = Some(network);
        for v in &mut self.cfg.virtuals {
            if v.settings.forwarding == Some(network) {
                v.settings.forwarding = None;
            }
        }
    }

    /// VRRP addresses no virtual server uses: the NAT real servers' gateway becomes
    /// `nat_router`, the others `floating` addresses.
    pub(super) fn floating_addresses(&mut self) {
        let network = self.cfg.global.network();
        let nat_reals: Vec<IpAddr> = self
            .cfg
            .virtuals
            .iter()
            .flat_map(|v| {
                let vf = v.settings.forwarding.unwrap_or(network);
                v.servers.iter().filter_map(move |s| {
                    (s.settings.forwarding.unwrap_or(vf) == Forwarding::Nat)
                        .then(|| s.settings.address.as_ref()?.ip())
                        .flatten()
                })
            })
            .collect();
        let vips = std::mem::take(&mut self.vips);
        let mut per_instance: HashMap<&str, usize> = HashMap::new();
        for v in vips.iter().filter(|v| !v.used) {
            let max = if v.addr.is_ipv4() { 32 } else { 128 };
            let gateway = self.cfg.global.nat_router.is_none()
                && v.prefix
                    .is_some_and(|p| p < max && nat_reals.iter().any(|&r| in_subnet(r, v.addr, p)));
            if gateway {
                self.cfg.global.nat_router = Some(AddrDev {
                    addr: Host::Ip(v.addr),
                    device: v.dev.clone(),
                });
                self.cfg.global.nat_nmask = v.prefix.map(Netmask);
                let at = v.node;
                self.note(
                    at,
                    format!(
                        "virtual address {}: imported as nat_router, the NAT real servers' gateway",
                        v.addr
                    ),
                );
                continue;
            }
            let k = per_instance.entry(v.instance.as_str()).or_default();
            *k += 1;
            let base = block_name(&v.instance, "vip");
            let base = if *k == 1 { base } else { format!("{base}_{k}") };
            let taken: HashSet<String> = self.cfg.floating.iter().map(|f| f.name.clone()).collect();
            self.cfg.floating.push(FloatingAddress {
                name: unique_name(base, &taken),
                settings: FloatingSettings {
                    active: Some(true),
                    address: Some(AddrDev {
                        addr: Host::Ip(v.addr),
                        device: v.dev.clone(),
                    }),
                    vip_nmask: v.prefix.map(Netmask),
                },
                comments: Comments::default(),
            });
        }
        self.vips = vips;
    }

    /// Says where the file came from, above the first line `lvs.cf` will have.
    pub(super) fn header_comment(&mut self) {
        let main = self
            .files
            .first()
            .and_then(|f| Path::new(f).file_name())
            .map_or_else(
                || "keepalived.conf".to_string(),
                |f| f.to_string_lossy().into_owned(),
            );
        let line = vec![format!(
            " Imported from {} by lvs-director: read the import warnings before applying.",
            shorten(&main)
        )];
        let c = &mut self.cfg;
        if let Some((kw, _)) = c.global.entries().first() {
            c.comments.add(kw, line);
        } else if let Some(f) = c.floating.first_mut() {
            f.comments.add(Comments::BLOCK, line);
        } else if let Some(l) = c.local_checks.first_mut() {
            l.comments.add(Comments::BLOCK, line);
        } else if let Some(v) = c.virtuals.first_mut() {
            v.comments.add(Comments::BLOCK, line);
        } else {
            c.comments.add(Comments::END, line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::config::validate;

    #[test]
    fn subnets() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_subnet(ip("192.168.10.11"), ip("192.168.10.254"), 24));
        assert!(!in_subnet(ip("192.168.11.11"), ip("192.168.10.254"), 24));
        assert!(in_subnet(ip("10.9.9.9"), ip("192.168.10.254"), 0));
        assert!(in_subnet(ip("2001:db8::1"), ip("2001:db8::ff"), 64));
        assert!(!in_subnet(ip("2001:db8::1"), ip("10.0.0.1"), 8));
    }

    #[test]
    fn vips_become_service_addresses_and_stay_with_their_instance() {
        let r = imp("vrrp_instance VI_1 {\n interface eth0\n virtual_ipaddress {\n  10.0.0.100/24\n  10.0.0.101 dev eth1 label eth1:web\n  10.0.0.102/24 label other\n }\n}\nvirtual_server 10.0.0.101 443 { protocol TCP }\n");
        let c = &r.config;
        let a = c.virtuals[0].settings.address.as_ref().unwrap();
        assert_eq!(a.render(), "10.0.0.101 eth1:web");
        assert_eq!(c.virtuals[0].settings.vip_nmask, None);
        // The instance raises its addresses: none becomes a floating one.
        assert!(c.floating.is_empty());
        let vips: Vec<String> = c.vrrp[0]
            .settings
            .virtual_ipaddress
            .as_ref()
            .unwrap()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            vips,
            [
                "10.0.0.100/24",
                "10.0.0.101 dev eth1 label eth1:web",
                "10.0.0.102/24"
            ]
        );
        assert!(has(&r.warnings, "`label other` not imported"));
    }

    #[test]
    fn without_vrrp_instances_unused_vips_cannot_exist_and_floating_stays_empty() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n}\n");
        assert!(r.config.vrrp.is_empty() && r.config.floating.is_empty());
    }

    #[test]
    fn fwmark_without_a_matching_vip_is_imported_inactive() {
        let r = imp("virtual_server fwmark 3 {\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n}\n");
        let v = &r.config.virtuals[0];
        assert_eq!(v.settings.active, Some(false));
        assert_eq!(v.settings.address, None);
        assert!(has(&r.warnings, "imported with active = 0: set `address`"));
        assert!(validate(&r.config).iter().all(|d| !d.is_error()));
    }
}

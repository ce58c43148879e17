//! `global_defs` → `lvs.cf`'s global settings: notification mail, gratuitous ARP,
//! IPVS timeouts and the sync daemon (resolved after the VRRP instances, whose
//! `virtual_router_id` is its default id).

use super::report::{MAIL, NOT_VRRP, NO_EQUIVALENT, RUN_AS};
use super::tree::{shorten, Node};
use super::values::{mail_address, writable_item, writable_word};
use super::Importer;
use crate::config::value::*;

impl<'n> Importer<'n> {
    /// Maps `global_defs`; returns the `lvs_sync_daemon` statement, resolved once the
    /// VRRP instances are known.
    pub(super) fn global_defs(&mut self, n: &'n Node) -> Option<&'n Node> {
        let mut sync = None;
        for c in n.children() {
            match c.kw() {
                "notification_email" => self.emails(c),
                "notification_email_from" => {
                    if let Some(s) = self.one_arg(c) {
                        let a = mail_address(s).to_string();
                        if a != s.trim() && writable_word(&a) {
                            self.note(c, format!("`notification_email_from`: the display name not imported: smtp_from holds a bare address ({a})"));
                        }
                        if writable_word(&a) {
                            self.cfg.global.smtp_from = Some(Word(a));
                        } else {
                            self.bad_value(c, "not a mail address");
                        }
                    }
                }
                "smtp_server" => self.smtp_server(c),
                "router_id" | "lvs_id" => self.not_imported(
                    c,
                    "lvs-director tells the directors apart by their addresses (primary, backup)",
                ),
                "smtp_alert" | "smtp_alert_vrrp" | "smtp_alert_checker" | "no_email_faults"
                | "no_checker_emails" => self.not_imported(c, MAIL),
                "smtp_connect_timeout" => {
                    if let Some(t) = self.arg_timer(c) {
                        if t.is_zero() {
                            self.bad_value(c, "it must be above 0");
                        } else {
                            self.cfg.global.smtp_timeout = Some(t);
                        }
                    }
                }
                "smtp_helo_name" => self.not_imported(c, NO_EQUIVALENT),
                "enable_script_security" => self.not_imported(
                    c,
                    "lvs-director runs commands without a shell; make sure the imported scripts are writable only by root",
                ),
                "script_user" => self.not_imported(c, RUN_AS),
                "vrrp_version" => match self.arg_u32(c) {
                    Some(2) => self.cfg.global.vrrp_version = Some(VrrpVersion::V2),
                    Some(3) => self.cfg.global.vrrp_version = Some(VrrpVersion::V3),
                    Some(_) => self.bad_value(c, "VRRP version 2 or 3 expected"),
                    None => {}
                },
                "vrrp_garp_master_delay" => {
                    self.vrrp_defaults.garp_master_delay = self.arg_timer(c)
                }
                "vrrp_garp_lower_prio_repeat" => {
                    self.vrrp_defaults.garp_lower_prio_repeat = self.arg_u32(c)
                }
                // Both the heartbeat's (used when there is no vrrp_instance) and each
                // instance's default.
                "vrrp_garp_master_repeat" => {
                    if let Some(v) = self.arg_u32(c) {
                        self.cfg.global.garp_count = Some(v);
                        self.vrrp_defaults.garp_master_repeat = Some(v);
                    }
                }
                "vrrp_garp_master_refresh" => {
                    if let Some(v) = self.arg_timer(c) {
                        self.cfg.global.garp_refresh = Some(v);
                        self.vrrp_defaults.garp_master_refresh = Some(v);
                    }
                }
                "vrrp_garp_interval" => {
                    if let Some(v) = self.arg_timer(c) {
                        self.cfg.global.garp_interval = Some(v);
                        self.vrrp_defaults.garp_interval_at = Some(c);
                    }
                }
                "vrrp_gna_interval" => self.not_imported(
                    c,
                    "IPv6 neighbour advertisements are spaced by garp_interval, like gratuitous ARPs",
                ),
                "vrrp_garp_master_refresh_repeat"
                | "vrrp_garp_lower_prio_delay"
                | "vrrp_min_garp"
                | "vrrp_garp_extra_if" => self.not_imported(
                    c,
                    "lvs-director sends one burst of garp_count announcements on takeover, then one every garp_refresh",
                ),
                "lvs_timeouts" => self.lvs_timeouts(c),
                "lvs_sync_daemon" => sync = Some(c),
                "lvs_sync_daemon_interface" => {
                    if let Some(s) = self.one_arg(c) {
                        self.set_sync_iface(c, s.to_string());
                    }
                }
                "lvs_flush" | "lvs_flush_onstop" | "lvs_flush_on_stop" => self.not_imported(
                    c,
                    "lvs-director never flushes the IPVS table: it changes only the services it owns",
                ),
                kw if kw.starts_with("vrrp_") => self.not_imported(c, NOT_VRRP),
                _ => self.not_imported(c, NO_EQUIVALENT),
            }
        }
        let g = &mut self.cfg.global;
        if g.smtp_server.is_none() && g.smtp_to.take().is_some() {
            if let Some(at) = n.children().iter().find(|c| c.kw() == "notification_email") {
                self.not_imported(
                    at,
                    "there is no smtp_server, so keepalived sends no mail either",
                );
            }
        }
        sync
    }

    fn emails(&mut self, n: &Node) {
        let mut items = Vec::new();
        let words: Vec<(String, &Node)> = if n.block.is_some() {
            n.children()
                .iter()
                .flat_map(|c| c.words.iter().map(move |w| (w.text.clone(), c)))
                .collect()
        } else {
            n.args().iter().map(|w| (w.text.clone(), n)).collect()
        };
        for (w, at) in words {
            let a = mail_address(&w).to_string();
            if writable_item(&a) && !a.is_empty() {
                if a != w.trim() {
                    self.note(at, format!("`{}`: the display name not imported: smtp_to holds bare addresses ({a})", shorten(&w)));
                }
                items.push(a);
            } else {
                self.note(
                    at,
                    format!("`{}` not imported: not a mail address", shorten(&w)),
                );
            }
        }
        if !items.is_empty() {
            self.cfg
                .global
                .smtp_to
                .get_or_insert_with(List::default)
                .0
                .extend(items);
        }
    }

    fn smtp_server(&mut self, n: &Node) {
        let args = n.args();
        let (host, port) = match args {
            [h] => (h, None),
            [h, p] => (h, Some(p)),
            _ => return self.bad_value(n, "`smtp_server HOST [PORT]` expected"),
        };
        match parse_host(&host.text) {
            Ok(h) => self.cfg.global.smtp_server = Some(h),
            Err(_) => return self.bad_value(n, "not a host name or address"),
        }
        if let Some(p) = port {
            match p.text.parse::<u16>() {
                Ok(p) => self.cfg.global.smtp_port = Some(PortSpec::Number(p)),
                Err(_) => self.bad_value(n, "the port is not a number (port 25 is used)"),
            }
        }
    }

    fn lvs_timeouts(&mut self, n: &Node) {
        let args = n.args();
        let mut i = 0;
        while i < args.len() {
            let value = args.get(i + 1).and_then(|v| v.text.parse::<u32>().ok());
            let slot = match args[i].text.as_str() {
                "tcp" => &mut self.cfg.global.tcp_timeout,
                "tcpfin" => &mut self.cfg.global.tcpfin_timeout,
                "udp" => &mut self.cfg.global.udp_timeout,
                _ => {
                    let w = args[i].text.clone();
                    self.note(
                        n,
                        format!(
                            "`lvs_timeouts`: `{}` not imported: tcp, tcpfin or udp expected",
                            shorten(&w)
                        ),
                    );
                    i += 1;
                    continue;
                }
            };
            match value {
                Some(v) => *slot = Some(v),
                None => {
                    let w = args[i].text.clone();
                    self.note(
                        n,
                        format!("`lvs_timeouts`: `{w}` not imported: seconds expected after it"),
                    );
                }
            }
            i += 2;
        }
    }

    pub(super) fn set_sync_iface(&mut self, n: &Node, iface: String) {
        if !writable_word(&iface) {
            return self.bad_value(n, "not an interface name");
        }
        if let Some(old) = &self.cfg.global.syncd_iface {
            if old.0 != iface {
                let old = old.0.clone();
                self.note(n, format!("`{}` not imported: the sync daemon already runs on {old}; lvs-director runs one", n.kw()));
                return;
            }
        }
        self.cfg.global.syncdaemon = Some(true);
        self.cfg.global.syncd_iface = Some(Word(iface));
    }

    /// `lvs_sync_daemon IF [[inst] INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]`.
    pub(super) fn sync_daemon(&mut self, n: &Node) {
        let args = n.args();
        let Some(iface) = args.first() else {
            return self.bad_value(n, "the interface is missing");
        };
        let mut instance = None;
        let mut id = None;
        let mut dropped = Vec::new();
        let mut i = 1;
        while i < args.len() {
            let w = args[i].text.as_str();
            let next = args.get(i + 1).map(|a| a.text.as_str());
            match (w, next) {
                ("inst", Some(v)) => instance = Some(v.to_string()),
                ("id", Some(v)) => match v.parse::<u32>() {
                    Ok(v) if v <= 255 => id = Some(v),
                    _ => dropped.push(format!("id {v}")),
                },
                ("maxlen" | "port" | "ttl" | "group", Some(v)) => dropped.push(format!("{w} {v}")),
                _ => {
                    instance = Some(w.to_string());
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        self.set_sync_iface(n, iface.text.clone());
        if let Some(inst) = &instance {
            // The daemon's master/backup role follows that instance.
            if let Some(b) = self.vrrp_block_of(inst) {
                self.cfg.vrrp[b].settings.lvs_sync_daemon = Some(true);
            }
            match self.vrids.get(inst) {
                // keepalived's default sync id is the instance's virtual_router_id.
                Some(&vrid) if id.is_none() => id = Some(vrid),
                Some(_) => {}
                None => self.note(
                    n,
                    format!("`lvs_sync_daemon`: no vrrp_instance `{inst}`; the sync daemon follows the director's active/backup state anyway"),
                ),
            }
        }
        if let Some(id) = id {
            self.cfg.global.syncd_id = Some(id);
        }
        if !dropped.is_empty() {
            self.note(
                n,
                format!("`lvs_sync_daemon`: `{}` not imported: lvs-director uses the kernel's defaults for the sync daemon's packets", dropped.join(" ")),
            );
        }
    }
}

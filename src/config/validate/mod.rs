//! Cross-field rules. The same rules serve `check-config`, import, the web forms and the
//! supervisor's reload: every diagnostic names the block and the keyword it is about.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::diag::{Diagnostic, Scope, Severity};
use super::model::*;
use super::value::*;

mod vrrp;

/// Largest weight `ipvsadm` accepts (the kernel field is an int).
pub const MAX_WEIGHT: u32 = 65_535;

struct V<'a> {
    c: &'a Config,
    out: Vec<Diagnostic>,
}

impl V<'_> {
    fn push(&mut self, severity: Severity, scope: Scope, keyword: Option<&str>, msg: String) {
        let path = scope.describe(self.c);
        let kw = keyword.map(|k| format!("`{k}`")).unwrap_or_default();
        let prefix = match (path.is_empty(), kw.is_empty()) {
            (true, true) => String::new(),
            (true, false) => format!("{kw}: "),
            (false, true) => format!("{path}: "),
            (false, false) => format!("{path}: {kw}: "),
        };
        self.out.push(Diagnostic {
            severity,
            scope,
            keyword: keyword.map(str::to_string),
            message: format!("{prefix}{msg}"),
            pos: None,
        });
    }
    fn error(&mut self, scope: Scope, keyword: Option<&str>, msg: impl Into<String>) {
        self.push(Severity::Error, scope, keyword, msg.into());
    }
    fn warn(&mut self, scope: Scope, keyword: Option<&str>, msg: impl Into<String>) {
        self.push(Severity::Warning, scope, keyword, msg.into());
    }
}

/// Checks a configuration. Errors make it unusable; warnings are worth reading.
pub fn validate(c: &Config) -> Vec<Diagnostic> {
    let mut v = V { c, out: Vec::new() };
    writable(&mut v, Scope::Global, &c.global.unwritable(), &c.comments);
    global(&mut v);
    for (i, f) in c.floating.iter().enumerate() {
        name_rule(&mut v, Scope::Floating(i), &f.name);
        floating(&mut v, i, f);
    }
    for (i, l) in c.local_checks.iter().enumerate() {
        name_rule(&mut v, Scope::LocalCheck(i), &l.name);
        local_check(&mut v, i, l);
    }
    for (i, vs) in c.virtuals.iter().enumerate() {
        name_rule(&mut v, Scope::Virtual(i), &vs.name);
        virtual_server(&mut v, i, vs);
    }
    for (i, inst) in c.vrrp.iter().enumerate() {
        name_rule(&mut v, Scope::Vrrp(i), &inst.name);
    }
    vrrp::check(&mut v);
    duplicates(&mut v);
    for (i, f) in c.failovers.iter().enumerate() {
        let s = Scope::Failover(i);
        name_rule(&mut v, s, &f.name);
        writable(&mut v, s, &f.settings.unwritable(), &f.comments);
        writable(&mut v, s, &f.check.unwritable(), &Comments::default());
        v.warn(
            s,
            None,
            "FOS failover services are not run by lvs-director; the block is kept but ignored",
        );
    }
    v.out
}

/// Names come from the file or a form: they must read back as one token.
fn name_rule(v: &mut V, s: Scope, name: &str) {
    if let Some(why) = name_problem(name) {
        v.error(s, None, format!("invalid name: {why}"));
    }
}

/// True when there is no error among the diagnostics.
pub fn is_valid(diags: &[Diagnostic]) -> bool {
    !diags.iter().any(Diagnostic::is_error)
}

fn writable(v: &mut V, scope: Scope, bad: &[(&'static str, &'static str)], comments: &Comments) {
    for (kw, why) in bad {
        v.error(
            scope,
            Some(kw),
            format!("cannot be written to lvs.cf: {why}"),
        );
    }
    for (key, lines) in &comments.0 {
        if lines.iter().any(|l| l.contains(['\n', '\r'])) {
            let kw = (key != Comments::BLOCK && key != Comments::END).then_some(key.as_str());
            v.error(scope, kw, "a comment line contains a line break");
        }
    }
}

fn same_host(a: &Host, b: &Host) -> bool {
    match (a, b) {
        (Host::Ip(x), Host::Ip(y)) => x == y,
        (Host::Name(x), Host::Name(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    }
}

fn family(h: &Host) -> Option<bool> {
    h.ip().map(|ip| ip.is_ipv6())
}

fn mask_fits(v: &mut V, scope: Scope, kw: &str, mask: Option<Netmask>, addr: Option<&Host>) {
    if mask == Some(Netmask(0)) {
        v.warn(
            scope,
            Some(kw),
            "0.0.0.0 means no mask, as in Piranha (a single address: /32 for IPv4, /128 for IPv6)",
        );
        return;
    }
    if let (Some(m), Some(Host::Ip(ip))) = (mask, addr) {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if m.prefix() > max {
            v.error(
                scope,
                Some(kw),
                format!(
                    "Bad subnet mask: /{} is longer than an {} address",
                    m.prefix(),
                    fam_name(ip)
                ),
            );
        }
    }
}

fn fam_name(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn port_name(v: &mut V, scope: Scope, kw: &str, p: &Option<PortSpec>) {
    if let Some(PortSpec::Service(name)) = p {
        if super::services::lookup(name).is_none() {
            v.warn(
                scope,
                Some(kw),
                format!("`{name}` is not a well-known service name; it is looked up in /etc/services when applied"),
            );
        }
    }
}

fn unused(v: &mut V, scope: Scope, keywords: &[(&str, bool)], why: &str) {
    for (kw, set) in keywords {
        if *set {
            v.warn(
                scope,
                Some(kw),
                format!("kept for compatibility, but {why}"),
            );
        }
    }
}

fn global(v: &mut V) {
    let c = v.c;
    let g = &c.global;
    let s = Scope::Global;
    if g.service() == ServiceType::Fos {
        v.warn(
            s,
            Some("service"),
            "FOS failover services are not run by lvs-director; `service = lvs` is used",
        );
    }
    if let (Some(p), Some(b)) = (&g.primary, &g.backup) {
        if same_host(p, b) {
            v.error(
                s,
                Some("backup"),
                format!("primary and backup are the same address ({p})"),
            );
        } else if family(p).is_some() && family(b).is_some() && family(p) != family(b) {
            v.warn(
                s,
                Some("backup"),
                "primary and backup are of different address families",
            );
        }
    }
    if let Some(p) = &g.primary {
        if p.is_unspecified() {
            v.error(
                s,
                Some("primary"),
                format!(
                    "primary is the unspecified address {p}: set this director's public address"
                ),
            );
        }
    }
    if g.backup_active() {
        match &g.backup {
            None => v.error(
                s,
                Some("backup_active"),
                "backup_active = 1 needs a `backup` address",
            ),
            Some(b) if b.is_unspecified() => v.error(
                s,
                Some("backup"),
                "backup_active = 1 but backup is 0.0.0.0: set the backup director's address",
            ),
            _ => {}
        }
        if g.primary.is_none() {
            v.error(
                s,
                Some("backup_active"),
                "backup_active = 1 needs a `primary` address",
            );
        }
        if g.heartbeat_key_file.is_none() {
            v.warn(
                s,
                Some("backup_active"),
                "heartbeats are not authenticated (as in Piranha); set heartbeat_key_file to a shared key",
            );
        }
    } else {
        for kw in ["monitor_links", "syncdaemon"] {
            let on = match kw {
                "monitor_links" => g.monitor_links.unwrap_or(0) != 0,
                // Under VRRP the sync daemon follows the instance with lvs_sync_daemon.
                _ => g.syncdaemon.unwrap_or(false) && !c.uses_vrrp(),
            };
            if on {
                v.warn(
                    s,
                    Some(kw),
                    "has no effect without a backup director (backup_active = 1)",
                );
            }
        }
    }
    if let (Some(pp), Some(bp)) = (&g.primary_private, &g.backup_private) {
        if same_host(pp, bp) {
            v.error(
                s,
                Some("backup_private"),
                "primary_private and backup_private are the same address",
            );
        }
    }
    if g.backup_private.is_some() && g.primary_private.is_none() {
        v.warn(
            s,
            Some("backup_private"),
            "ignored without primary_private (Piranha uses the public addresses for both heartbeat paths then)",
        );
    }
    match g.heartbeat_port.as_ref().map(PortSpec::number) {
        Some(Some(0)) => v.error(
            s,
            Some("heartbeat_port"),
            "port 0 cannot be used for heartbeats",
        ),
        _ => port_name(v, s, "heartbeat_port", &g.heartbeat_port),
    }
    let (ka, dt) = (g.keepalive(), g.deadtime());
    if ka.is_zero() {
        v.error(s, Some("keepalive"), "keepalive must be greater than 0");
    } else if dt <= ka {
        let kw = if g.deadtime.is_some() {
            "deadtime"
        } else {
            "keepalive"
        };
        v.error(
            s,
            Some(kw),
            format!("deadtime ({dt} s) must be longer than keepalive ({ka} s), or one late heartbeat fails over"),
        );
    } else if dt.millis() < 2 * ka.millis() {
        v.warn(
            s,
            Some("deadtime"),
            format!("deadtime ({dt} s) is less than two keepalive intervals ({ka} s): one lost heartbeat fails over"),
        );
    }
    if let Some(r) = &g.nat_router {
        mask_fits(v, s, "nat_nmask", g.nat_nmask, Some(&r.addr));
        let uses_nat = c
            .virtuals
            .iter()
            .any(|vs| vs.settings.forwarding(g) == Forwarding::Nat);
        if !uses_nat && !c.virtuals.is_empty() {
            v.warn(
                s,
                Some("nat_router"),
                "no virtual server uses NAT forwarding, so nat_router is not needed",
            );
        }
    } else if g.nat_nmask.is_some() {
        v.warn(
            s,
            Some("nat_nmask"),
            "nat_nmask has no effect without nat_router",
        );
    }
    if let Some(id) = g.syncd_id {
        if id > 255 {
            v.warn(
                s,
                Some("syncd_id"),
                format!(
                    "{id} is out of range 0-255; as in Piranha, {} (id & 255) is used",
                    id & 255
                ),
            );
        }
    }
    if g.heartbeat == Some(false) {
        v.warn(
            s,
            Some("heartbeat"),
            "heartbeat = 0 is ignored (Piranha ignored it too): heartbeats follow backup_active",
        );
    }
    if g.garp_count == Some(0) {
        v.warn(
            s,
            Some("garp_count"),
            "no gratuitous ARP is sent on takeover: neighbours may keep the old MAC for minutes",
        );
    }
    if g.smtp_to.as_ref().is_some_and(|l| !l.0.is_empty()) && g.smtp_server.is_none() {
        v.error(
            s,
            Some("smtp_to"),
            "mail recipients are set but smtp_server is not",
        );
    }
    if g.smtp_timeout.is_some_and(Secs::is_zero) {
        v.error(
            s,
            Some("smtp_timeout"),
            "smtp_timeout must be greater than 0",
        );
    }
    if g.smtp_server.is_some() {
        if g.smtp_to.as_ref().is_none_or(|l| l.0.is_empty()) {
            v.warn(
                s,
                Some("smtp_server"),
                "smtp_server is set but smtp_to names no recipient",
            );
        }
        if g.smtp_from.is_none() {
            v.warn(
                s,
                Some("smtp_from"),
                "no sender address: mail is sent from lvs-director@<hostname>",
            );
        }
    }
    if g.preempt_delay.is_some() && !g.preempt() {
        v.warn(s, Some("preempt_delay"), "has no effect with preempt = 0");
    }
    if g.rsh_command.is_some()
        && !c
            .virtuals
            .iter()
            .any(|vs| vs.settings.load_monitor == Some(LoadMonitor::Uptime))
    {
        v.warn(
            s,
            Some("rsh_command"),
            "only used by load_monitor = uptime, which no virtual server sets",
        );
    }
    unused(
        v,
        s,
        &[
            ("primary_shared", g.primary_shared.is_some()),
            ("backup_shared", g.backup_shared.is_some()),
            (
                "reservation_conflict_action",
                g.reservation_conflict_action.is_some(),
            ),
        ],
        "it applies only to FOS shared storage, which lvs-director does not run",
    );
    unused(
        v,
        s,
        &[("ipvsadm", g.ipvsadm.is_some()), ("sync", g.sync.is_some())],
        "it has no effect (lvs-director programs IPVS over netlink and logs through its log level)",
    );
    let active_vs = c.virtuals.iter().any(|vs| vs.settings.active());
    let active_fl = c
        .floating
        .iter()
        .any(|f| f.settings.active.unwrap_or(false));
    if !active_vs && !active_fl && !c.uses_vrrp() {
        v.warn(
            s,
            None,
            "no active virtual server or floating address: the director has nothing to run",
        );
    }
}

fn floating(v: &mut V, i: usize, f: &FloatingAddress) {
    let s = Scope::Floating(i);
    writable(v, s, &f.settings.unwritable(), &f.comments);
    let active = f.settings.active.unwrap_or(false);
    match &f.settings.address {
        None if active => v.error(
            s,
            Some("address"),
            "an active floating address needs `address = IP DEVICE`",
        ),
        None => v.warn(s, Some("address"), "no address set"),
        Some(a) if a.addr.is_unspecified() && active => {
            v.error(s, Some("address"), "0.0.0.0 is not a usable address")
        }
        Some(a) => mask_fits(v, s, "vip_nmask", f.settings.vip_nmask, Some(&a.addr)),
    }
}

fn local_check(v: &mut V, i: usize, l: &LocalCheck) {
    let s = Scope::LocalCheck(i);
    writable(v, s, &l.settings.unwritable(), &l.comments);
    writable(v, s, &l.check.unwritable(), &Comments::default());
    let kind = l.check.kind(Protocol::Tcp);
    let needs_port = matches!(
        kind,
        CheckKind::Tcp | CheckKind::Udp | CheckKind::Http | CheckKind::Https | CheckKind::Dns
    );
    if needs_port && l.settings.port.is_none() && l.check.check_port.is_none() {
        v.error(
            s,
            Some("port"),
            format!("a local check of kind {kind} needs the port of the local daemon"),
        );
    }
    port_name(v, s, "port", &l.settings.port);
    check_rules(v, s, &l.check, None, Protocol::Tcp);
}

/// Rules for a (possibly overlaid) check. `own` holds the keywords written in this
/// block, so that errors point where the value was written.
fn check_rules(
    v: &mut V,
    s: Scope,
    c: &CheckSettings,
    own: Option<&CheckSettings>,
    proto: Protocol,
) {
    let written_here = |kw: &str| own.is_none_or(|o| o.get(kw).is_some());
    if c.timeout().is_zero() && written_here("timeout") {
        v.error(
            s,
            Some("timeout"),
            "timeout = 0 is not allowed (Piranha divides by it): use at least 1 s, or 0.1 s",
        );
    }
    if c.check_interval.is_some_and(Secs::is_zero) && written_here("check_interval") {
        v.error(
            s,
            Some("check_interval"),
            "check_interval must be greater than 0",
        );
    }
    if let Some(d) = &c.check_digest {
        if crate::config::value::parse_digest(&d.0).is_none() && written_here("check_digest") {
            v.error(
                s,
                Some("check_digest"),
                format!("`{}` is not an MD5 digest (32 hexadecimal digits, as `lvs-director genhash` prints)", d.0),
            );
        }
    }
    if c.retry_interval.is_some_and(Secs::is_zero) && written_here("retry_interval") {
        v.error(
            s,
            Some("retry_interval"),
            "retry_interval must be greater than 0",
        );
    }
    if c.retry_interval.is_some() && c.fall() <= 1 && written_here("retry_interval") {
        v.warn(
            s,
            Some("retry_interval"),
            "has no effect with fall = 1: the first failure takes the server out (set fall = retries + 1)",
        );
    }
    for kw in ["rise", "fall"] {
        let val = if kw == "rise" { c.rise } else { c.fall };
        if val == Some(0) && written_here(kw) {
            v.error(s, Some(kw), format!("{kw} must be at least 1"));
        }
    }
    let regex_ok = |pat: &str| regex::Regex::new(pat).err().map(|e| e.to_string());
    if c.use_regex == Some(true) {
        if let Some(Escaped(e)) = &c.expect {
            if let Some(err) = regex_ok(e) {
                if written_here("expect") {
                    v.error(
                        s,
                        Some("expect"),
                        format!("invalid regular expression: {}", first_line(&err)),
                    );
                }
            }
        } else if written_here("use_regex") {
            v.warn(
                s,
                Some("use_regex"),
                "use_regex = 1 without an expect string",
            );
        }
    }
    if let Some(Text(r)) = &c.check_regex {
        if let Some(err) = regex_ok(r) {
            if written_here("check_regex") {
                v.error(
                    s,
                    Some("check_regex"),
                    format!("invalid regular expression: {}", first_line(&err)),
                );
            }
        }
    }
    match c.check {
        Some(CheckKind::Program) if c.send_program.is_none() && written_here("check") => {
            v.error(s, Some("check"), "check = program needs send_program");
        }
        Some(k @ (CheckKind::Http | CheckKind::Https)) => {
            if proto != Protocol::Tcp && written_here("check") {
                v.error(
                    s,
                    Some("check"),
                    format!("an {k} check cannot test a {proto} service"),
                );
            }
            if (c.send.is_some() || c.expect.is_some()) && written_here("check") {
                v.warn(
                    s,
                    Some("check"),
                    format!("send/expect are not used by an {k} check"),
                );
            }
        }
        Some(CheckKind::Udp) if proto == Protocol::Tcp && written_here("check") => {
            v.warn(s, Some("check"), "a UDP check of a TCP service");
        }
        Some(CheckKind::Tcp) if proto == Protocol::Udp && written_here("check") => {
            v.warn(
                s,
                Some("check"),
                "a TCP connect check of a UDP service tests a port the service may not listen on",
            );
        }
        _ => {}
    }
    if c.dynamic_weight == Some(true)
        && c.kind(proto) != CheckKind::Program
        && written_here("dynamic_weight")
    {
        v.warn(
            s,
            Some("dynamic_weight"),
            "only a program check (send_program) sets the weight",
        );
    }
    if let Some(Word(n)) = &c.check_dns_name {
        if let Err(e) = super::dns::qname(n) {
            if written_here("check_dns_name") {
                v.error(s, Some("check_dns_name"), e);
            }
        }
    }
    if let Some(Word(t)) = &c.check_dns_type {
        if super::dns::qtype(t).is_none() && written_here("check_dns_type") {
            v.error(
                s,
                Some("check_dns_type"),
                format!("`{t}` is not one of A, NS, CNAME, SOA, MX, TXT, AAAA"),
            );
        }
    }
    let dns = c.kind(proto) == CheckKind::Dns;
    for (kw, set) in [
        ("check_dns_name", c.check_dns_name.is_some()),
        ("check_dns_type", c.check_dns_type.is_some()),
    ] {
        if set && !dns && written_here(kw) {
            v.warn(s, Some(kw), "only used by `check = dns`");
        }
    }
    if c.check_source.is_some()
        && matches!(c.kind(proto), CheckKind::Program | CheckKind::Ping)
        && written_here("check_source")
    {
        v.warn(
            s,
            Some("check_source"),
            "not used by program and ping checks",
        );
    }
    let http = matches!(c.check, Some(CheckKind::Http | CheckKind::Https));
    for (kw, set) in [
        ("check_path", c.check_path.is_some()),
        ("check_host", c.check_host.is_some()),
        ("check_status", c.check_status.is_some()),
        ("check_regex", c.check_regex.is_some()),
        ("check_url", c.check_url.is_some()),
    ] {
        if set && !http && written_here(kw) {
            v.warn(
                s,
                Some(kw),
                "only used by `check = http` or `check = https`",
            );
        }
    }
    if c.check_url.is_some() && c.check_path.is_some() && written_here("check_path") {
        v.warn(
            s,
            Some("check_path"),
            "not used: check_url names the pages to check",
        );
    }
    if let Some(Text(p)) = &c.check_path {
        if !p.starts_with('/') && written_here("check_path") {
            v.error(s, Some("check_path"), format!("`{p}` must start with /"));
        }
    }
    if written_here("check_port") {
        port_name(v, s, "check_port", &c.check_port);
    }
}

/// The regex crate's error is a multi-line picture; its last line says what is wrong.
fn first_line(s: &str) -> String {
    let last = s.lines().last().unwrap_or(s).trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

fn virtual_server(v: &mut V, i: usize, vs: &VirtualServer) {
    let c = v.c;
    let s = Scope::Virtual(i);
    let st = &vs.settings;
    writable(v, s, &st.unwritable(), &vs.comments);
    writable(v, s, &vs.check.unwritable(), &Comments::default());
    let active = st.active();
    let vip = st.address.as_ref().map(|a| &a.addr);
    match &st.address {
        None if active => v.error(
            s,
            Some("address"),
            "an active virtual server needs `address = IP DEVICE`",
        ),
        None => v.warn(
            s,
            Some("address"),
            "no address set (needed before it can be activated)",
        ),
        Some(a) if a.addr.is_unspecified() && active => v.error(
            s,
            Some("address"),
            "the virtual IP is 0.0.0.0: set the address clients connect to",
        ),
        Some(_) => {}
    }
    mask_fits(v, s, "vip_nmask", st.vip_nmask, vip);
    mask_fits(v, s, "pmask", st.pmask, vip);
    let sched = st.scheduler();
    if !sched.is_known() {
        v.error(
            s,
            Some("scheduler"),
            format!(
                "unknown scheduler `{}`; the kernel has {}",
                sched.0,
                KERNEL_SCHEDULERS.join(" ")
            ),
        );
    }
    if (st.sched_port.is_some() || st.sched_fallback.is_some())
        && !matches!(sched.0.as_str(), "sh" | "mh")
    {
        let kw = if st.sched_port.is_some() {
            "sched_port"
        } else {
            "sched_fallback"
        };
        v.warn(
            s,
            Some(kw),
            format!(
                "only the sh and mh schedulers have this flag, not {}",
                sched.0
            ),
        );
    }
    let proto = st.protocol();
    let fwmark = st.fwmark();
    let port = st.port();
    port_name(v, s, "port", &st.port);
    if fwmark == 0 && port.number() == Some(0) && st.persistent() == 0 {
        v.error(
            s,
            Some("port"),
            "port 0 (all ports) is only allowed with `persistent`",
        );
    }
    if st.pmask.is_some() && st.persistent() == 0 {
        v.warn(s, Some("pmask"), "has no effect without `persistent`");
    }
    if st.one_packet == Some(true) && proto != Protocol::Udp {
        v.warn(
            s,
            Some("one_packet"),
            "one-packet scheduling only applies to UDP services",
        );
    }
    if let (Some(sorry), Some(Host::Ip(ip))) = (st.sorry_server, vip) {
        if sorry.is_ipv6() != ip.is_ipv6() && st.forwarding(&c.global) != Forwarding::Tunnel {
            v.error(
                s,
                Some("sorry_server"),
                "the sorry server's address family differs from the virtual IP's",
            );
        }
    }
    if st.quorum == Some(0) {
        v.error(
            s,
            Some("quorum"),
            "quorum must be at least 1 (the total weight the healthy servers need)",
        );
    }
    if let (Some(q), Some(h)) = (st.quorum, st.hysteresis) {
        if h >= q && q > 0 {
            v.warn(
                s,
                Some("hysteresis"),
                format!("with hysteresis {h} ≥ quorum {q} the quorum is only lost when no weight is left"),
            );
        }
    }
    for (kw, set) in [
        ("sorry_port", st.sorry_port.is_some()),
        ("sorry_server_inhibit", st.sorry_server_inhibit.is_some()),
    ] {
        if set && st.sorry_server.is_none() {
            v.warn(s, Some(kw), "has no effect without sorry_server");
        }
    }
    port_name(v, s, "sorry_port", &st.sorry_port);
    if let Some(lm) = &st.load_monitor {
        if matches!(lm, LoadMonitor::Rup | LoadMonitor::Ruptime) {
            v.warn(
                s,
                Some("load_monitor"),
                "rup/ruptime need rstatd/rwhod on the real servers, which modern systems lack: ignored, the weights stay as configured (use `uptime` with rsh_command = ssh, or a command)",
            );
        }
    }
    unused(
        v,
        s,
        &[
            ("client_monitor", st.client_monitor.is_some()),
            ("start_cmd", st.start_cmd.is_some()),
            ("stop_cmd", st.stop_cmd.is_some()),
            ("master", st.master.is_some()),
            ("dirs", st.dirs.is_some()),
        ],
        "it has no effect on a virtual server",
    );
    check_rules(v, s, &vs.check, None, proto);
    if active && !vs.servers.iter().any(|r| r.settings.active()) {
        v.warn(
            s,
            None,
            if st.sorry_server.is_some() {
                "active, but no real server is active: all clients go to the sorry server"
            } else {
                "active, but no real server is active: clients will be refused"
            },
        );
    }
    let mut names = HashSet::new();
    let mut dests: HashMap<(String, String), &str> = HashMap::new();
    for (j, r) in vs.servers.iter().enumerate() {
        let rs = Scope::Server(i, j);
        let sv = &r.settings;
        writable(v, rs, &sv.unwritable(), &r.comments);
        writable(v, rs, &r.check.unwritable(), &Comments::default());
        if !names.insert(r.name.as_str()) {
            v.error(
                rs,
                None,
                "duplicate real server name in this virtual server",
            );
        }
        match &sv.address {
            None if sv.active() => v.error(
                rs,
                Some("address"),
                "an active real server needs an address",
            ),
            None => v.warn(rs, Some("address"), "no address set"),
            Some(a) if a.is_unspecified() && sv.active() => v.error(
                rs,
                Some("address"),
                "the address is 0.0.0.0: set the real server's address",
            ),
            Some(a) => {
                let fwd = sv.forwarding(st, &c.global);
                if let (Some(rf), Some(vf)) = (family(a), vip.and_then(family)) {
                    if rf != vf && fwd != Forwarding::Tunnel {
                        v.error(
                            rs,
                            Some("address"),
                            "the real server's address family differs from the virtual IP's; the kernel allows that only with tunnel forwarding",
                        );
                    }
                }
                let port = sv.port(st);
                let port = port.canonical();
                let key = (a.to_string().to_ascii_lowercase(), port);
                if let Some(other) = dests.insert(key, r.name.as_str()) {
                    v.error(
                        rs,
                        Some("address"),
                        format!("same address and port as server {other}"),
                    );
                }
            }
        }
        if let Some(w) = sv.weight {
            if w > MAX_WEIGHT {
                v.error(
                    rs,
                    Some("weight"),
                    format!("weight {w} is out of range 0-{MAX_WEIGHT}"),
                );
            }
        }
        if fwmark != 0 && sv.port.is_none() && st.port.is_none() {
            v.error(
                rs,
                Some("port"),
                "fwmark service without a port: set `port` on the real server (the port to forward to and check)",
            );
        }
        port_name(v, rs, "port", &sv.port);
        let fwd = sv.forwarding(st, &c.global);
        for (kw, set) in [
            ("tunnel_type", sv.tunnel_type.is_some()),
            ("tunnel_port", sv.tunnel_port.is_some()),
            ("tunnel_csum", sv.tunnel_csum.is_some()),
        ] {
            if set && fwd != Forwarding::Tunnel {
                v.warn(
                    rs,
                    Some(kw),
                    format!("only used with tunnel forwarding (this server uses {fwd})"),
                );
            }
        }
        if sv.tunnel_type == Some(TunnelType::Gue) && sv.tunnel_port.is_none() {
            v.error(rs, Some("tunnel_port"), "a GUE tunnel needs tunnel_port");
        }
        if let (Some(l), Some(u)) = (sv.lthreshold, sv.uthreshold) {
            if u != 0 && l > u {
                v.error(
                    rs,
                    Some("lthreshold"),
                    format!("lthreshold ({l}) is above uthreshold ({u})"),
                );
            }
        }
        if !r.check.is_empty() {
            check_rules(v, rs, &r.check.overlay(&vs.check), Some(&r.check), proto);
        }
        let source = r.check.check_source.or(vs.check.check_source);
        if let (Some(src), Some(Host::Ip(ip))) = (source, &sv.address) {
            let kind = r.check.overlay(&vs.check).kind(proto);
            if src.is_ipv4() != ip.is_ipv4()
                && !matches!(kind, CheckKind::Program | CheckKind::Ping | CheckKind::None)
            {
                v.error(
                    rs,
                    Some("check_source"),
                    format!("the check cannot connect from {src} to {ip}, an address of the other family: set this server's own check_source"),
                );
            }
        }
    }
}

/// Names, services and addresses that must be unique across blocks.
fn duplicates(v: &mut V) {
    let c = v.c;
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut services: HashMap<String, usize> = HashMap::new();
    let mut devices: HashMap<String, (String, String)> = HashMap::new();
    for (i, vs) in c.virtuals.iter().enumerate() {
        let s = Scope::Virtual(i);
        if let Some(j) = names.insert(vs.name.as_str(), i) {
            let _ = j;
            v.error(s, None, "duplicate virtual server name");
        }
        if !vs.settings.active() {
            continue;
        }
        let st = &vs.settings;
        let key = if st.fwmark() != 0 {
            let v6 = st
                .address
                .as_ref()
                .and_then(|a| family(&a.addr))
                .unwrap_or(false);
            Some((
                format!(
                    "fwmark {} ({})",
                    st.fwmark(),
                    if v6 { "IPv6" } else { "IPv4" }
                ),
                "fwmark",
            ))
        } else {
            st.address.as_ref().map(|a| {
                let port = st.port();
                let port = port.canonical();
                (format!("{} port {port} {}", a.addr, st.protocol()), "port")
            })
        };
        if let Some((key, kw)) = key {
            if let Some(j) = services.insert(key.clone(), i) {
                v.error(
                    s,
                    Some(kw),
                    format!("same service ({key}) as virtual {}", c.virtuals[j].name),
                );
            }
        }
        if let Some(a) = &st.address {
            vip_device(
                v,
                &mut devices,
                s,
                "address",
                a,
                &format!("virtual {}", vs.name),
            );
        }
    }
    let mut fnames = HashSet::new();
    for (i, f) in c.floating.iter().enumerate() {
        let s = Scope::Floating(i);
        if !fnames.insert(f.name.as_str()) {
            v.error(s, None, "duplicate floating address name");
        }
        if let (true, Some(a)) = (f.settings.active.unwrap_or(false), &f.settings.address) {
            vip_device(
                v,
                &mut devices,
                s,
                "address",
                a,
                &format!("floating {}", f.name),
            );
        }
    }
    if let Some(r) = &c.global.nat_router {
        vip_device(
            v,
            &mut devices,
            Scope::Global,
            "nat_router",
            r,
            "nat_router",
        );
    }
    let mut lnames = HashSet::new();
    for (i, l) in c.local_checks.iter().enumerate() {
        if !lnames.insert(l.name.as_str()) {
            v.error(Scope::LocalCheck(i), None, "duplicate local check name");
        }
    }
    let mut inames = HashSet::new();
    for (i, inst) in c.vrrp.iter().enumerate() {
        if !inames.insert(inst.name.as_str()) {
            v.error(Scope::Vrrp(i), None, "duplicate vrrp instance name");
        }
    }
}

/// One address must not be raised on two different devices.
fn vip_device(
    v: &mut V,
    seen: &mut HashMap<String, (String, String)>,
    s: Scope,
    kw: &str,
    a: &AddrDev,
    who: &str,
) {
    let key = a.addr.to_string().to_ascii_lowercase();
    match seen.get(&key) {
        Some((dev, other)) if a.base_device() != dev => v.error(
            s,
            Some(kw),
            format!(
                "{} is also raised on {dev} by {other}; one address can live on one device only",
                a.addr
            ),
        ),
        Some(_) => {}
        None => {
            seen.insert(key, (a.base_device().to_string(), who.to_string()));
        }
    }
}

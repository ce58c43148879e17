//! The health checkers inside `real_server` (`TCP_CHECK`, `HTTP_GET`, `SSL_GET`,
//! `MISC_CHECK`, …) → `lvs.cf` check settings, with a stand-in and a warning for those
//! lvs-director cannot run; then what every server's check shares moves up to the
//! virtual server, so the imported file says each setting once.

use std::net::IpAddr;

use super::report::{NO_EQUIVALENT, RUN_AS};
use super::tree::{shorten, Node};
use super::values::{with_placeholders, writable_word};
use super::Importer;
use crate::config::lexer::Token;
use crate::config::model::*;
use crate::config::parse::value_tokens;
use crate::config::url::{UrlCheck, UrlList};
use crate::config::value::*;

/// Health-check parameters inherited virtual_server → real_server → checker.
#[derive(Clone, Default)]
pub(super) struct Params {
    pub(super) delay_loop: Option<Secs>,
    pub(super) connect_timeout: Option<Secs>,
    pub(super) retry: Option<u32>,
    pub(super) virtualhost: Option<String>,
    pub(super) inhibit: Option<bool>,
    /// `delay_before_retry`.
    pub(super) retry_delay: Option<Secs>,
    pub(super) warmup: Option<Secs>,
    pub(super) alpha: Option<bool>,
}

impl Params {
    pub(super) fn over(&self, base: &Params) -> Params {
        Params {
            delay_loop: self.delay_loop.or(base.delay_loop),
            connect_timeout: self.connect_timeout.or(base.connect_timeout),
            retry: self.retry.or(base.retry),
            virtualhost: self.virtualhost.clone().or(base.virtualhost.clone()),
            inhibit: self.inhibit.or(base.inhibit),
            retry_delay: self.retry_delay.or(base.retry_delay),
            warmup: self.warmup.or(base.warmup),
            alpha: self.alpha.or(base.alpha),
        }
    }
}

/// Keywords whose meaning depends on the check kind: moved to the virtual server only
/// together with `check` itself.
const KIND_SPECIFIC: &[&str] = &[
    "send",
    "expect",
    "use_regex",
    "send_program",
    "check_path",
    "check_host",
    "check_status",
    "check_regex",
    "check_digest",
    "check_url",
    "dynamic_weight",
    "check_dns_name",
    "check_dns_type",
];

/// Puts what the real servers' checks share on the virtual server, keyword by keyword,
/// leaving only the differences on the servers. Servers without a check (`check = none`)
/// take whatever the others share: none of it applies to them.
pub(super) fn hoist_checks(vs: &mut VirtualServer) {
    let n = vs.servers.len();
    let all: Vec<usize> = (0..n).collect();
    let real: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| vs.servers[i].check.check != Some(CheckKind::None))
        .collect();
    let same = |pool: &[usize], kw: &str, servers: &[RealServer]| -> Option<String> {
        let first = servers[*pool.first()?].check.get(kw)?;
        pool.iter()
            .all(|&i| servers[i].check.get(kw).as_ref() == Some(&first))
            .then_some(first)
    };
    // A program check needs its command beside it (`check = program` alone does not
    // validate), so with different commands the kind stays on each server too.
    let kind_shared = match same(&all, "check", &vs.servers) {
        Some(k) if k == CheckKind::Program.as_str() => {
            same(&all, "send_program", &vs.servers).is_some()
        }
        Some(_) => true,
        None => false,
    };
    for kw in CheckSettings::KEYWORDS {
        let pool: &[usize] = if *kw == "check" || KIND_SPECIFIC.contains(kw) {
            if !kind_shared {
                continue;
            }
            &all
        } else {
            &real
        };
        let Some(v) = same(pool, kw, &vs.servers) else {
            continue;
        };
        let Ok(toks) = value_tokens(&v) else {
            continue;
        };
        if let Some(Ok(_)) = vs.check.set(kw, &toks) {
            for &i in pool {
                vs.servers[i].check.unset(kw);
            }
        }
    }
}

/// What one `url { … }` block says.
#[derive(Default)]
struct Page {
    path: Option<String>,
    status: Option<StatusSet>,
    digest: Option<String>,
    host: Option<String>,
    regex: Option<String>,
}

impl<'n> Importer<'n> {
    /// One checker of the real server at `target` (address, port).
    pub(super) fn checker(
        &mut self,
        c: &'n Node,
        inherited: &Params,
        proto: Protocol,
        target: (IpAddr, u16),
    ) -> CheckSettings {
        let kind = c.kw();
        let http = matches!(kind, "HTTP_GET" | "SSL_GET");
        let mut p = Params::default();
        let mut cs = CheckSettings::default();
        let mut urls = Vec::new();
        let mut misc_timeout = None;
        let mut sni = None;
        for o in c.children() {
            if self.common_param(o, &mut p) {
                continue;
            }
            match (kind, o.kw()) {
                (_, "connect_port") => {
                    if let Some(v) = self.arg_u32(o) {
                        match u16::try_from(v) {
                            Ok(v) => cs.check_port = Some(PortSpec::Number(v)),
                            Err(_) => self.bad_value(o, "not a port number"),
                        }
                    }
                }
                (_, "connect_ip") => {
                    self.not_imported(o, "checks connect to the real server's own address")
                }
                (_, "bindto") => match self.one_arg(o).map(str::parse::<IpAddr>) {
                    Some(Ok(ip)) => cs.check_source = Some(ip),
                    Some(Err(_)) => self.bad_value(o, "not an IP address"),
                    None => {}
                },
                (_, "bind_if" | "bind_port") => self.not_imported(
                    o,
                    "checks connect from check_source (bindto) and a port the kernel chooses",
                ),
                (_, "fwmark") => self.not_imported(o, "check packets are not marked"),
                ("HTTP_GET" | "SSL_GET", "url") => urls.push(o),
                // keepalived checks one url per delay_loop unless fast_recovery is set;
                // lvs-director always checks every page in one round, which is what
                // fast_recovery asks for.
                ("HTTP_GET" | "SSL_GET", "fast_recovery") => {}
                ("HTTP_GET" | "SSL_GET", "enable_sni") => sni = sni.or(Some((None, o))),
                ("HTTP_GET" | "SSL_GET", "sni_name") => {
                    if let Some(s) = self.one_arg(o) {
                        sni = Some((Some(s.to_string()), o));
                    }
                }
                ("MISC_CHECK", "misc_path") => {
                    cs.send_program = self.command(o, true);
                    if let Some(cmd) = &cs.send_program {
                        let hint = match with_placeholders(&cmd.0, target) {
                            Some(h) => format!(", e.g. `{}`", shorten(&h)),
                            None => String::new(),
                        };
                        self.note(o, format!("`misc_path` kept as written: lvs-director replaces %h and %p by the real server's address and port{hint}, so that one check serves all servers"));
                    }
                }
                ("MISC_CHECK", "misc_timeout") => misc_timeout = self.arg_timer(o),
                ("MISC_CHECK", "misc_dynamic") => {
                    if let Some(v) = self.arg_flag(o) {
                        cs.dynamic_weight = Some(v);
                    }
                }
                ("MISC_CHECK", "user") => self.not_imported(o, RUN_AS),
                (
                    "UDP_CHECK",
                    "payload" | "require_reply" | "min_reply_length" | "max_reply_length",
                ) => self.not_imported(
                    o,
                    "lvs-director's UDP check has no payload or reply options",
                ),
                ("SMTP_CHECK", "helo_name") => self.not_imported(
                    o,
                    "lvs-director checks the server's 220 greeting and sends no HELO",
                ),
                ("SMTP_CHECK", "host") => self.not_imported(
                    o,
                    "keepalived's deprecated host block: the real server's address and port (or connect_port) are checked",
                ),
                ("DNS_CHECK", "type") => {
                    if let Some(t) = self.one_arg(o) {
                        if crate::config::dns::qtype(t).is_some() {
                            cs.check_dns_type = Some(Word(t.to_ascii_uppercase()));
                        } else {
                            self.bad_value(o, "A, NS, CNAME, SOA, MX, TXT or AAAA expected");
                        }
                    }
                }
                ("DNS_CHECK", "name") => {
                    if let Some(n) = self.one_arg(o) {
                        match crate::config::dns::qname(n) {
                            Ok(_) if writable_word(n) => cs.check_dns_name = Some(Word(n.to_string())),
                            Ok(_) => self.bad_value(o, "lvs.cf cannot hold this name"),
                            Err(e) => self.bad_value(o, &e),
                        }
                    }
                }
                ("BFD_CHECK" | "FILE_CHECK", _) => {}
                _ => self.not_imported(o, NO_EQUIVALENT),
            }
        }
        let eff = p.over(inherited);
        // keepalived's retry defaults (keepalived.conf(5)).
        let default_retry = match kind {
            "MISC_CHECK" => 0,
            "DNS_CHECK" => 3,
            _ => 1,
        };
        let interval = eff.delay_loop.unwrap_or(Secs::from_secs(60));
        let connect_timeout = eff.connect_timeout.unwrap_or(Secs::from_secs(5));
        // keepalived takes a server out when a check fails and its `retry` retries fail
        // too (check_tcp.c: down once `retry_it >= retry`), i.e. after retry + 1
        // consecutive failures, and puts it back after one success. Hence
        // fall = retry + 1 and rise = 1 (lvs-director's own default rise is Piranha's
        // reentry / interval).
        let fall = eff.retry.unwrap_or(default_retry).saturating_add(1);
        cs.fall = Some(fall);
        cs.rise = Some(1);
        cs.check_interval = Some(interval);
        // keepalived retries after delay_before_retry, which defaults to 1 s (3 s for
        // HTTP_GET / SSL_GET, delay_loop for DNS_CHECK: check_api.c, check_http.c,
        // check_dns.c); only retries use it.
        if fall > 1 {
            let default_delay = match kind {
                "HTTP_GET" | "SSL_GET" => Secs::from_secs(3),
                "DNS_CHECK" => interval,
                _ => Secs::from_secs(1),
            };
            let retry = eff.retry_delay.unwrap_or(default_delay);
            if retry != interval {
                cs.retry_interval = Some(retry);
            }
        }
        // keepalived's warmup defaults to delay_loop: a random first delay within the
        // interval, which lvs-director's stable offset within the interval already is.
        if let Some(w) = eff.warmup.filter(|w| *w != interval) {
            cs.warmup = Some(w);
        }
        cs.timeout = Some(connect_timeout);
        if eff.alpha == Some(true) {
            cs.alpha = Some(true);
        }
        match kind {
            "TCP_CHECK" => cs.check = Some(CheckKind::Tcp),
            "UDP_CHECK" => cs.check = Some(CheckKind::Udp),
            "PING_CHECK" => {
                cs.check = Some(CheckKind::Ping);
                cs.check_port = None;
            }
            "MISC_CHECK" => {
                // keepalived's misc_timeout defaults to delay_loop.
                cs.timeout = Some(misc_timeout.filter(|t| !t.is_zero()).unwrap_or(interval));
                cs.check_port = None;
                if cs.send_program.is_some() {
                    cs.check = Some(CheckKind::Program);
                } else {
                    self.substitute_check(c, &mut cs, proto, "it has no usable misc_path");
                }
            }
            _ if http => self.http_check(c, &mut cs, &urls, eff.virtualhost, sni, proto),
            // The greeting, read without sending anything first: some servers drop a
            // client that speaks before it (Exim's smtp_enforce_sync).
            "DNS_CHECK" => {
                cs.check = Some(CheckKind::Dns);
                // The SOA default is keepalived's too.
                if cs.check_dns_type.as_ref().is_some_and(|t| t.0 == "SOA") {
                    cs.check_dns_type = None;
                }
            }
            "SMTP_CHECK" if proto == Protocol::Tcp => {
                cs.check = Some(CheckKind::Tcp);
                cs.expect = Some(Escaped("220".into()));
            }
            other => {
                let what = match other {
                    "DNS_CHECK" => "DNS",
                    "SMTP_CHECK" => "SMTP",
                    "BFD_CHECK" => "BFD",
                    _ => "file",
                };
                let why = format!("lvs-director has no {what} check");
                self.substitute_check(c, &mut cs, proto, &why);
            }
        }
        cs
    }

    /// Stands in for a checker lvs-director cannot run (`why` says which), with a
    /// warning: a TCP connect to the server's port on a TCP service. A UDP or SCTP
    /// service gets no TCP check — a TCP connect does not test it — but an ICMP echo
    /// (`check = ping`), which at least finds a dead host.
    fn substitute_check(&mut self, c: &Node, cs: &mut CheckSettings, proto: Protocol, why: &str) {
        let instead = match proto {
            Protocol::Tcp => {
                cs.check = Some(CheckKind::Tcp);
                "a TCP connect to the server's port is used instead"
            }
            Protocol::Udp => {
                cs.check = Some(CheckKind::Ping);
                cs.check_port = None;
                "check = ping is used instead: an ICMP echo detects a dead host, where a bare UDP probe without send/expect would not; to test the service itself, set send and expect (check = udp) with a request it answers"
            }
            Protocol::Sctp => {
                cs.check = Some(CheckKind::Ping);
                cs.check_port = None;
                "check = ping is used instead: an ICMP echo detects a dead host; lvs-director has no SCTP check, and a TCP connect would not reach the service"
            }
        };
        self.not_imported(c, &format!("{why}; {instead}"));
    }

    fn http_check(
        &mut self,
        c: &Node,
        cs: &mut CheckSettings,
        urls: &[&'n Node],
        mut host: Option<String>,
        sni: Option<(Option<String>, &Node)>,
        proto: Protocol,
    ) {
        let https = c.kw() == "SSL_GET";
        if proto != Protocol::Tcp {
            let why = match proto {
                Protocol::Sctp => "an HTTP check cannot test an SCTP service",
                _ => "an HTTP check cannot test a UDP service",
            };
            return self.substitute_check(c, cs, proto, why);
        }
        cs.check = Some(if https {
            CheckKind::Https
        } else {
            CheckKind::Http
        });
        let pages: Vec<Page> = urls.iter().map(|u| self.url_block(u)).collect();
        match pages.as_slice() {
            [] => {}
            [page] => {
                cs.check_path = page.path.clone().map(Text);
                cs.check_status = page.status.clone();
                cs.check_digest = page.digest.clone().map(Word);
                cs.check_regex = page.regex.clone().map(Text);
                if page.host.is_some() {
                    host = page.host.clone();
                }
            }
            _ => {
                // The server is up only when every page passes, as in keepalived.
                let list = pages
                    .iter()
                    .map(|page| UrlCheck {
                        path: page.path.clone().unwrap_or_else(|| "/".into()),
                        status: page.status.clone(),
                        digest: page.digest.clone(),
                        host: page.host.clone(),
                        regex: page.regex.clone(),
                    })
                    .collect();
                cs.check_url = Some(UrlList(list));
            }
        }
        if let Some((name, at)) = sni {
            match (name, &host) {
                (None, Some(_)) => {}
                (None, None) => self.not_imported(
                    at,
                    "lvs-director sends check_host as the TLS server name: set check_host",
                ),
                (Some(n), Some(h)) if n == *h => {}
                (Some(n), _) => self.not_imported(
                    at,
                    &format!(
                        "lvs-director sends check_host{} as the TLS server name, not {n}",
                        host.as_ref().map_or(String::new(), |h| format!(" ({h})"))
                    ),
                ),
            }
        }
        cs.check_host = host.map(Word);
    }

    fn status_codes(&mut self, o: &Node) -> Option<StatusSet> {
        let joined = o
            .args()
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(",");
        match StatusSet::parse(&[Token::bare(joined, 1)]) {
            Ok(s) => Some(s),
            Err(_) => {
                self.bad_value(o, "status codes such as 200 or 200-299 expected");
                None
            }
        }
    }

    /// One `url { … }` block of an HTTP_GET / SSL_GET.
    fn url_block(&mut self, u: &Node) -> Page {
        let mut page = Page::default();
        let mut regex_flags = String::new();
        let mut regex: Option<(String, &Node)> = None;
        for o in u.children() {
            match o.kw() {
                "path" => {
                    if let Some(s) = self.one_arg(o) {
                        let path = if s.starts_with('/') {
                            s.to_string()
                        } else {
                            format!("/{s}")
                        };
                        if Text(path.clone()).unwritable().is_some()
                            || UrlList(vec![UrlCheck::new(path.clone())])
                                .unwritable()
                                .is_some()
                        {
                            self.bad_value(o, "lvs.cf cannot hold this path");
                        } else {
                            page.path = Some(path);
                        }
                    }
                }
                "digest" => {
                    if let Some(d) = self.one_arg(o) {
                        if crate::config::value::parse_digest(d).is_some() {
                            page.digest = Some(d.to_ascii_lowercase());
                        } else {
                            self.bad_value(o, "not an MD5 digest (32 hexadecimal digits)");
                        }
                    }
                }
                "status_code" => page.status = self.status_codes(o),
                "virtualhost" => {
                    if let Some(s) = self.one_arg(o) {
                        if writable_word(s) {
                            page.host = Some(s.to_string());
                        } else {
                            self.bad_value(o, "not a host name");
                        }
                    }
                }
                "regex" => {
                    if let Some(s) = self.one_arg(o) {
                        regex = Some((s.to_string(), o));
                    }
                }
                "regex_options" => {
                    let mut dropped = Vec::new();
                    for w in o.args() {
                        match w.text.as_str() {
                            "caseless" => regex_flags.push('i'),
                            "multiline" => regex_flags.push('m'),
                            "dotall" => regex_flags.push('s'),
                            "extended" => regex_flags.push('x'),
                            "ungreedy" => regex_flags.push('U'),
                            other => dropped.push(other.to_string()),
                        }
                    }
                    if !dropped.is_empty() {
                        self.note(
                            o,
                            format!(
                                "`regex_options`: `{}` not imported: {NO_EQUIVALENT}",
                                shorten(&dropped.join(" "))
                            ),
                        );
                    }
                }
                "regex_no_match" => {
                    self.not_imported(o, "check_regex must match; the test cannot be inverted")
                }
                "regex_stack" | "regex_min_offset" | "regex_max_offset" => {
                    self.not_imported(o, "the whole body is searched")
                }
                _ => self.not_imported(o, NO_EQUIVALENT),
            }
        }
        if let Some((pattern, at)) = regex {
            let full = if regex_flags.is_empty() {
                pattern
            } else {
                format!("(?{regex_flags}){pattern}")
            };
            let mut listed = UrlCheck::new("/");
            listed.regex = Some(full.clone());
            if let Err(e) = regex::Regex::new(&full) {
                let why = e.to_string();
                let why = why.lines().last().unwrap_or("").trim().to_string();
                self.bad_value(at, &format!("lvs-director's regular expressions (Rust regex syntax) cannot read it: {why}"));
            } else if Text(full.clone()).unwritable().is_some()
                || UrlList(vec![listed]).unwritable().is_some()
            {
                self.bad_value(at, "lvs.cf cannot hold this expression");
            } else {
                page.regex = Some(full);
            }
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::config::keepalived::Imported;
    use crate::config::{parse, render, validate};

    #[test]
    fn retry_becomes_fall_and_one_success_brings_a_server_back() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n retry 4\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n real_server 10.0.0.3 80 { MISC_CHECK { misc_path /bin/true } }\n real_server 10.0.0.4 80 { TCP_CHECK { retry 0 } }\n}\n");
        let v = &r.config.virtuals[0];
        let fall = |i: usize| v.servers[i].check.overlay(&v.check).fall;
        // VS-level retry 4 is inherited by every checker, MISC_CHECK included.
        assert_eq!((fall(0), fall(1), fall(2)), (Some(5), Some(5), Some(1)));
        assert_eq!(v.check.rise, Some(1));
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n real_server 10.0.0.3 80 { MISC_CHECK { misc_path /bin/true } }\n}\n");
        let v = &r.config.virtuals[0];
        let fall = |i: usize| v.servers[i].check.overlay(&v.check).fall;
        // keepalived's defaults: retry 1 (fall 2), MISC_CHECK retry 0 (fall 1).
        assert_eq!((fall(0), fall(1)), (Some(2), Some(1)));
        assert_eq!(v.check.check_interval, Some(Secs::from_secs(60)));
        assert_eq!(v.check.timeout, None, "5 s connect vs 60 s misc_timeout");
    }

    #[test]
    fn shared_check_keywords_move_to_the_virtual_server() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n delay_loop 7\n real_server 10.0.0.2 80 { TCP_CHECK { connect_port 8080 } }\n real_server 10.0.0.3 80 { TCP_CHECK { connect_port 8081 } }\n real_server 10.0.0.4 80 { weight 2 }\n}\n");
        let v = &r.config.virtuals[0];
        assert_eq!(v.check.check_interval, Some(Secs::from_secs(7)));
        assert_eq!(v.check.check, None, "tcp on two servers, none on the third");
        assert_eq!(v.check.check_port, None);
        assert_eq!(v.servers[0].check.check, Some(CheckKind::Tcp));
        assert_eq!(v.servers[0].check.check_port, Some(PortSpec::Number(8080)));
        assert_eq!(
            v.servers[2].check.entries(),
            [("check", "none".to_string())]
        );
    }

    /// keepalived checkers lvs-director cannot run, on each protocol.
    fn substitute(checker: &str, proto: &str) -> Imported {
        imp(&format!(
            "virtual_server 10.0.0.1 53 {{\n protocol {proto}\n real_server 10.0.0.2 53 {{\n  {checker} {{\n   connect_port 5353\n  }}\n }}\n real_server 10.0.0.3 53 {{ }}\n}}\n"
        ))
    }

    #[test]
    fn unsupported_checkers_never_become_tcp_checks_of_udp_or_sctp_services() {
        for checker in [
            "SMTP_CHECK",
            "BFD_CHECK",
            "FILE_CHECK",
            "HTTP_GET",
            "SSL_GET",
            "MISC_CHECK",
        ] {
            for (proto, tail) in [
                ("UDP", "check = ping is used instead: an ICMP echo detects a dead host, where a bare UDP probe without send/expect would not; to test the service itself, set send and expect (check = udp)"),
                ("SCTP", "check = ping is used instead: an ICMP echo detects a dead host; lvs-director has no SCTP check, and a TCP connect would not reach the service"),
            ] {
                let r = substitute(checker, proto);
                let s = &r.config.virtuals[0].servers[0];
                assert_eq!(s.check.check, Some(CheckKind::Ping), "{checker} {proto}");
                let v = &r.config.virtuals[0];
                assert_eq!((s.check.check_port.clone()).or(v.check.check_port.clone()), None);
                let w = format!("keepalived.conf:4: `{checker} {{ … }}` not imported: ");
                assert!(has(&r.warnings, &w), "{checker} {proto}: {:#?}", r.warnings);
                assert!(has(&r.warnings, tail), "{checker} {proto}: {:#?}", r.warnings);
                assert!(
                    !r.warnings.iter().any(|w| w.contains("TCP connect to")),
                    "{checker} {proto}: {:#?}",
                    r.warnings
                );
                assert!(validate(&r.config).iter().all(|d| !d.is_error()));
                assert_eq!(parse(&render(&r.config)).unwrap().config, r.config);
            }
            // A TCP service keeps its connect check (HTTP_GET and SSL_GET are real checks).
            let r = substitute(checker, "TCP");
            let want = match checker {
                "HTTP_GET" => CheckKind::Http,
                "SSL_GET" => CheckKind::Https,
                _ => CheckKind::Tcp,
            };
            let s = &r.config.virtuals[0].servers[0];
            assert_eq!(s.check.check, Some(want), "{checker} TCP");
            let port =
                (s.check.check_port.clone()).or(r.config.virtuals[0].check.check_port.clone());
            if checker != "MISC_CHECK" {
                assert_eq!(port, Some(PortSpec::Number(5353)), "{checker} TCP");
            }
            if checker == "SMTP_CHECK" {
                // A real check: the 220 greeting, without a warning.
                let c = s.check.overlay(&r.config.virtuals[0].check);
                assert_eq!(c.expect, Some(Escaped("220".into())));
                assert_eq!(c.send, None);
                assert!(!has(&r.warnings, "SMTP"), "{:#?}", r.warnings);
            } else if want == CheckKind::Tcp {
                assert!(has(
                    &r.warnings,
                    "a TCP connect to the server's port is used instead"
                ));
            }
        }
        // DNS_CHECK is a real check over UDP, whatever the service's protocol.
        for proto in ["UDP", "TCP"] {
            let r = substitute("DNS_CHECK", proto);
            let v = &r.config.virtuals[0];
            let c = v.servers[0].check.overlay(&v.check);
            assert_eq!(c.check, Some(CheckKind::Dns), "{proto}");
            assert!(!has(&r.warnings, "DNS"), "{:#?}", r.warnings);
        }
        let r = imp("virtual_server 10.0.0.1 53 {\n protocol UDP\n real_server 10.0.0.2 53 { DNS_CHECK { type aaaa\n name www.example.com } }\n real_server 10.0.0.3 53 { DNS_CHECK { type SOA\n type WKS } }\n}\n");
        let v = &r.config.virtuals[0];
        let c = v.servers[0].check.overlay(&v.check);
        assert_eq!(
            (c.check_dns_type, c.check_dns_name),
            (
                Some(Word("AAAA".into())),
                Some(Word("www.example.com".into()))
            )
        );
        assert!(
            has(
                &r.warnings,
                "`type WKS` not imported: A, NS, CNAME, SOA, MX, TXT or AAAA expected"
            ),
            "{:#?}",
            r.warnings
        );
        let r = substitute("HTTP_GET", "SCTP");
        assert!(has(
            &r.warnings,
            "an HTTP check cannot test an SCTP service; check = ping"
        ));
        let r = substitute("MISC_CHECK", "UDP");
        assert!(has(&r.warnings, "it has no usable misc_path; check = ping"));
        // An explicit TCP_CHECK is what keepalived runs (a TCP connect), whatever the
        // service's protocol: it is kept.
        let r = substitute("TCP_CHECK", "UDP");
        let s = &r.config.virtuals[0].servers[0];
        assert_eq!(s.check.check, Some(CheckKind::Tcp));
    }

    /// The seed's checker timing and a per-server inhibit_on_failure import as keepalived
    /// runs them, without a warning.
    #[test]
    fn retry_delay_warmup_and_inhibit_keep_keepalived_timing() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n delay_loop 6\n real_server 10.0.0.2 80 {\n  inhibit_on_failure\n  TCP_CHECK {\n   nb_get_retry 3\n   delay_before_retry 3\n   warmup 10\n  }\n }\n real_server 10.0.0.3 80 {\n  TCP_CHECK {\n   nb_get_retry 3\n   delay_before_retry 3\n   warmup 10\n  }\n }\n}\n");
        // Only the notes about the missing VRRP part (no vrrp_instance here).
        assert!(
            r.warnings
                .iter()
                .all(|w| w.contains("vrrp_instance") || w.contains("VRRP address")),
            "{:#?}",
            r.warnings
        );
        let v = &r.config.virtuals[0];
        let c = v.servers[0].check.overlay(&v.check);
        assert_eq!(
            (c.check_interval, c.fall, c.retry_interval, c.warmup),
            (
                Some(Secs::from_secs(6)),
                Some(4),
                Some(Secs::from_secs(3)),
                Some(Secs::from_secs(10))
            )
        );
        assert_eq!(v.settings.quiesce_server, None);
        assert_eq!(v.servers[0].settings.quiesce_server, Some(true));
        assert_eq!(v.servers[1].settings.quiesce_server, None);
        // keepalived's default delay_before_retry: 1 s, 3 s for HTTP_GET.
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n delay_loop 10\n real_server 10.0.0.2 80 { HTTP_GET { url { path / } nb_get_retry 2 } }\n}\n");
        let v = &r.config.virtuals[0];
        assert_eq!(
            v.servers[0].check.overlay(&v.check).retry_interval,
            Some(Secs::from_secs(3))
        );
    }

    #[test]
    fn alpha_at_any_level_starts_servers_out_of_the_pool() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n alpha\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n real_server 10.0.0.3 80 { TCP_CHECK { } }\n}\nvirtual_server 10.0.0.1 81 {\n protocol TCP\n real_server 10.0.0.2 81 { TCP_CHECK { alpha } }\n real_server 10.0.0.3 81 { TCP_CHECK { } }\n}\n");
        assert!(!has(&r.warnings, "alpha"), "{:#?}", r.warnings);
        let a = |v: usize, s: usize| {
            let vs = &r.config.virtuals[v];
            vs.servers[s].check.overlay(&vs.check).alpha
        };
        assert_eq!((a(0, 0), a(0, 1)), (Some(true), Some(true)));
        assert_eq!((a(1, 0), a(1, 1)), (Some(true), None));
    }

    #[test]
    fn an_http_digest_is_checked_as_keepalived_does() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /health\n    digest 0EE5DBFCBA889EC228D56F564A880D56\n   }\n  }\n }\n}\n");
        assert!(!has(&r.warnings, "digest"), "{:#?}", r.warnings);
        let v = &r.config.virtuals[0];
        assert_eq!(
            v.servers[0].check.overlay(&v.check).check_digest,
            Some(Word("0ee5dbfcba889ec228d56f564a880d56".into()))
        );
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    digest nope\n   }\n  }\n }\n}\n");
        assert!(
            has(&r.warnings, "`digest nope` not imported: not an MD5 digest"),
            "{:#?}",
            r.warnings
        );
    }
}

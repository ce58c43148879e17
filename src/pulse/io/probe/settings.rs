//! From `lvs.cf` to a [`Probe`]: the effective check settings of a real server decide
//! the kind (Piranha's rule for tcp versus send/expect), and a bad value is refused here
//! with its keyword named, before any check runs. Also the probe's identity, which
//! lets identical checks under several virtual servers run once.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::{
    build_regex, show, split_words, substitute, Expect, HttpUrl, Probe, ProbeKind, RegexError,
};
use crate::config::model::CheckSettings;
use crate::config::url::UrlCheck;
use crate::config::value::{CheckKind, Protocol, Secs};
use crate::pulse::logic::argv::SplitError;

/// Why a real server's (or a `local_check`'s) check settings cannot be run. Each
/// names its keyword; the caller adds the block.
#[derive(Debug, thiserror::Error)]
pub enum CheckSettingsError {
    #[error("timeout: must be more than 0 seconds")]
    ZeroTimeout,
    /// `check_port` names a service that the built-in service table does not know.
    #[error("check_port: unknown service name `{0}`")]
    UnknownService(String),
    /// `keyword` is `expect` (with `use_regex = 1`) or `check_regex`.
    #[error("{keyword}: invalid regular expression `{pattern}`: {error}")]
    Regex {
        keyword: &'static str,
        pattern: String,
        #[source]
        error: RegexError,
    },
    #[error("send_program: required by `check = program` (the command to run)")]
    NoProgram,
    #[error("send_program: {0}")]
    ProgramLine(#[source] SplitError),
    #[error("send_program: the command is empty")]
    EmptyProgram,
    #[error(
        "check_path: `{0}` is not a request path (it must start with / and contain no blanks)"
    )]
    Path(String),
    #[error("check_url: `{0}` is not a request path (it must start with / and contain no blanks)")]
    UrlPath(String),
    #[error("check_host: `{0}` cannot be sent as a Host header")]
    Host(String),
    #[error("check_digest: `{0}` is not an MD5 digest (32 hexadecimal digits)")]
    Digest(String),
    #[error("check_url: `{0}` is not an MD5 digest (32 hexadecimal digits)")]
    UrlDigest(String),
    #[error("check_dns_name: {0}")]
    DnsName(String),
    #[error("check_dns_type: `{0}` is not one of A, NS, CNAME, SOA, MX, TXT, AAAA")]
    DnsType(String),
    #[error("check_source: {from} cannot reach {target}, an address of the other family")]
    SourceFamily { from: IpAddr, target: IpAddr },
}

pub use crate::config::value::parse_digest;

impl Probe {
    /// The check of one real server, from its effective check settings (the virtual
    /// server's [`CheckSettings`] overlaid by the server's), the protocol of the virtual
    /// server, and the real server's address and port (`check_port` overrides the
    /// port). `None` for `check = none`. Errors name the keyword and why.
    pub fn from_settings(
        check: &CheckSettings,
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    ) -> Result<Option<Probe>, CheckSettingsError> {
        let timeout = check.timeout();
        if timeout.is_zero() {
            return Err(CheckSettingsError::ZeroTimeout);
        }
        if let Some(src) = check.check_source {
            if src.is_ipv4() != addr.is_ipv4() {
                return Err(CheckSettingsError::SourceFamily {
                    from: src,
                    target: addr,
                });
            }
        }
        let port = match &check.check_port {
            None => port,
            Some(p) => p
                .number()
                .ok_or_else(|| CheckSettingsError::UnknownService(p.to_string()))?,
        };
        let regex = check.use_regex.unwrap_or(false);
        let expect_text = check.expect.as_ref().map(|e| e.0.as_str());
        let send = check.send.as_ref().map(|s| s.0.as_bytes().to_vec());
        let kind = match check.kind(protocol) {
            CheckKind::None => return Ok(None),
            CheckKind::Tcp if send.is_none() && expect_text.is_none() => ProbeKind::Tcp,
            CheckKind::Tcp => ProbeKind::SendExpect {
                send,
                expect: expect_text
                    .map(|e| Expect::new(e, regex, false))
                    .transpose()?
                    .flatten(),
            },
            CheckKind::Udp => ProbeKind::Udp {
                send: send.unwrap_or_default(),
                expect: expect_text
                    .map(|e| Expect::new(e, regex, false))
                    .transpose()?
                    .flatten(),
            },
            CheckKind::Program => {
                let line = check
                    .send_program
                    .as_ref()
                    .ok_or(CheckSettingsError::NoProgram)?;
                let words = split_words(&line.0).map_err(CheckSettingsError::ProgramLine)?;
                if words.is_empty() {
                    return Err(CheckSettingsError::EmptyProgram);
                }
                ProbeKind::Program {
                    argv: substitute(&words, addr, port, false),
                    expect: expect_text
                        .map(|e| Expect::new(e, regex, true))
                        .transpose()?
                        .flatten(),
                    dynamic: check.dynamic_weight.unwrap_or(false),
                }
            }
            kind @ (CheckKind::Http | CheckKind::Https) => {
                let tls = kind == CheckKind::Https;
                let default_port = if tls { 443 } else { 80 };
                let default_host = match &check.check_host {
                    Some(h) => h.0.clone(),
                    None => {
                        let a = match addr {
                            IpAddr::V4(a) => a.to_string(),
                            IpAddr::V6(a) => format!("[{a}]"),
                        };
                        if port == default_port {
                            a
                        } else {
                            format!("{a}:{port}")
                        }
                    }
                };
                let status = check
                    .check_status
                    .as_ref()
                    .map_or_else(|| vec![(200, 299)], |s| s.0.clone());
                let pages = match &check.check_url {
                    Some(list) => list.0.clone(),
                    None => vec![UrlCheck::new(
                        check.check_path.as_ref().map_or("/", |p| p.0.as_str()),
                    )],
                };
                let urls = pages
                    .iter()
                    .map(|page| {
                        http_url(
                            check,
                            page,
                            &default_host,
                            &status,
                            check.check_url.is_some(),
                        )
                    })
                    .collect::<Result<_, _>>()?;
                ProbeKind::Http { tls, urls }
            }
            CheckKind::Ping => ProbeKind::Ping,
            CheckKind::Dns => {
                let name = check.check_dns_name.as_ref().map_or("", |w| w.0.as_str());
                let t = check
                    .check_dns_type
                    .as_ref()
                    .map_or("SOA", |w| w.0.as_str());
                ProbeKind::Dns {
                    qname: super::dns::qname(name).map_err(CheckSettingsError::DnsName)?,
                    qtype: super::dns::qtype(t)
                        .ok_or_else(|| CheckSettingsError::DnsType(t.to_string()))?,
                }
            }
        };
        Ok(Some(Probe {
            kind,
            addr,
            port,
            sctp: protocol == Protocol::Sctp,
            timeout: timeout.as_duration(),
            policy: Arc::default(),
            source: check.check_source,
        }))
    }

    /// A canonical text of everything the check does, so that identical checks of the
    /// same real server under several virtual servers run once. The port is left out
    /// where it plays no part (ping, programs).
    pub fn identity(&self) -> String {
        let target = SocketAddr::new(self.addr, self.port);
        let mut s = match &self.kind {
            ProbeKind::Tcp => {
                format!("{} {target}", if self.sctp { "sctp" } else { "tcp" })
            }
            ProbeKind::SendExpect { send, expect } => {
                let mut s = format!(
                    "{}-send-expect {target}",
                    if self.sctp { "sctp" } else { "tcp" }
                );
                if let Some(send) = send {
                    let _ = write!(s, " send {}", show(send, usize::MAX));
                }
                if let Some(e) = expect {
                    let _ = write!(s, " expect {}", e.identity());
                }
                s
            }
            ProbeKind::Udp { send, expect } => {
                let mut s = format!("udp {target} send {}", show(send, usize::MAX));
                if let Some(e) = expect {
                    let _ = write!(s, " expect {}", e.identity());
                }
                s
            }
            ProbeKind::Program {
                argv,
                expect,
                dynamic,
            } => {
                let mut s = format!("program {argv:?}");
                if let Some(e) = expect {
                    let _ = write!(s, " expect {}", e.identity());
                }
                if *dynamic {
                    s.push_str(" dynamic weight");
                }
                s
            }
            ProbeKind::Http { tls, urls } => {
                let mut s = format!("{} {target}", if *tls { "https" } else { "http" });
                for u in urls {
                    let _ = write!(
                        s,
                        " GET {:?} host {:?} status {:?}",
                        u.path, u.host, u.status
                    );
                    if let Some(r) = &u.body {
                        let _ = write!(s, " body {:?}", r.as_str());
                    }
                    match &u.digest {
                        Some(super::Digest::Expect(d)) => {
                            let _ = write!(s, " digest {}", super::http::hex_digest(d));
                        }
                        Some(super::Digest::Report) => s.push_str(" digest reported"),
                        None => {}
                    }
                }
                s
            }
            ProbeKind::Ping => format!("ping {}", self.addr),
            ProbeKind::Dns { qname, qtype } => {
                format!("dns {target} {} type {qtype}", show(qname, usize::MAX))
            }
        };
        if let Some(src) = self.source {
            let _ = write!(s, " from {src}");
        }
        let _ = write!(s, " timeout {}", Secs(self.timeout.as_millis() as u64));
        s
    }
}

/// One page of an HTTP(S) check: what `page` says, the rest from the check's
/// keywords. `listed`: the page comes from `check_url` (errors name it).
fn http_url(
    check: &CheckSettings,
    page: &UrlCheck,
    default_host: &str,
    status: &[(u16, u16)],
    listed: bool,
) -> Result<HttpUrl, CheckSettingsError> {
    let path = page.path.as_str();
    let valid_path = path.starts_with('/')
        && path
            .parse::<hyper::Uri>()
            .is_ok_and(|u| u.scheme().is_none() && u.authority().is_none());
    if !valid_path {
        return Err(if listed {
            CheckSettingsError::UrlPath(path.to_string())
        } else {
            CheckSettingsError::Path(path.to_string())
        });
    }
    let host = page
        .host
        .clone()
        .unwrap_or_else(|| default_host.to_string());
    if hyper::header::HeaderValue::from_str(&host).is_err() {
        return Err(CheckSettingsError::Host(host));
    }
    let (regex_keyword, regex) = match (&page.regex, &check.check_regex) {
        (Some(r), _) => ("check_url", Some(r.as_str())),
        (None, Some(r)) => ("check_regex", Some(r.0.as_str())),
        (None, None) => ("check_regex", None),
    };
    let body = regex
        .map(|r| {
            build_regex(r).map_err(|error| CheckSettingsError::Regex {
                keyword: regex_keyword,
                pattern: r.to_string(),
                error,
            })
        })
        .transpose()?;
    let digest = match (&page.digest, &check.check_digest) {
        (Some(d), _) => {
            Some(parse_digest(d).ok_or_else(|| CheckSettingsError::UrlDigest(d.clone()))?)
        }
        (None, Some(d)) => {
            Some(parse_digest(&d.0).ok_or_else(|| CheckSettingsError::Digest(d.0.clone()))?)
        }
        (None, None) => None,
    };
    Ok(HttpUrl {
        path: path.to_string(),
        host,
        status: page
            .status
            .as_ref()
            .map_or_else(|| status.to_vec(), |s| s.0.clone()),
        body,
        digest: digest.map(super::Digest::Expect),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::*;
    use super::*;
    use crate::config::value::{Escaped, PortSpec, StatusSet, Text, Word};
    use crate::pulse::io::scripts::Policy;

    fn settings(f: impl FnOnce(&mut CheckSettings)) -> CheckSettings {
        let mut c = CheckSettings::default();
        f(&mut c);
        c
    }

    fn build(c: &CheckSettings, protocol: Protocol) -> Result<Option<Probe>, CheckSettingsError> {
        Probe::from_settings(c, protocol, "192.0.2.10".parse().unwrap(), 8080)
    }

    /// A program check built from a configuration runs nothing outside the scripts
    /// directory unless the supervisor widened its policy (a root-only lvs.cf), and
    /// its refusal is the check's failure.
    #[tokio::test]
    async fn a_program_check_is_refused_before_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("ran");
        let c = settings(|c| {
            c.send_program = Some(Text(format!("/usr/bin/touch {}", mark.display())));
            c.timeout = Some(Secs(5000));
        });
        let mut p = build(&c, Protocol::Tcp).unwrap().unwrap();
        assert_eq!(*p.policy, Policy::default());
        let o = p.run().await;
        assert_fail(
            &o,
            "not run: /usr/bin/touch is not in the scripts directory",
        );
        assert!(!mark.exists());
        p.policy = Arc::new(Policy::Any);
        assert_ok(&p.run().await);
        assert!(mark.exists());
    }

    #[test]
    fn kinds_from_settings_follow_piranhas_rule() {
        let kind = |c: &CheckSettings, p| build(c, p).unwrap().unwrap().kind;
        assert!(matches!(
            kind(&settings(|_| {}), Protocol::Tcp),
            ProbeKind::Tcp
        ));
        let p = build(&settings(|_| {}), Protocol::Sctp).unwrap().unwrap();
        assert!(matches!(p.kind, ProbeKind::Tcp) && p.sctp);
        assert_eq!(p.timeout, Duration::from_secs(10), "Piranha's default");
        let c = settings(|c| {
            c.send = Some(Escaped("GET / HTTP/1.0\r\n\r\n".into()));
            c.expect = Some(Escaped("HTTP".into()));
        });
        match kind(&c, Protocol::Tcp) {
            ProbeKind::SendExpect {
                send,
                expect: Some(Expect::Prefix(e)),
            } => {
                assert_eq!(send.unwrap(), b"GET / HTTP/1.0\r\n\r\n");
                assert_eq!(e, b"HTTP");
            }
            k => panic!("{k:?}"),
        }
        match kind(&c, Protocol::Udp) {
            ProbeKind::Udp {
                send,
                expect: Some(Expect::Prefix(_)),
            } => assert!(!send.is_empty()),
            k => panic!("{k:?}"),
        }
        let c = settings(|c| c.expect = Some(Escaped("*".into())));
        assert!(matches!(
            kind(&c, Protocol::Tcp),
            ProbeKind::SendExpect {
                send: None,
                expect: Some(Expect::Any)
            }
        ));
        let c = settings(|c| {
            c.expect = Some(Escaped("^2[0-9]{2} ".into()));
            c.use_regex = Some(true);
        });
        assert!(matches!(
            kind(&c, Protocol::Tcp),
            ProbeKind::SendExpect {
                expect: Some(Expect::Regex(_)),
                ..
            }
        ));
        // send_program wins over send/expect; its expect is compared whole.
        let c = settings(|c| {
            c.send_program = Some(Text("/usr/lib/check -h %h -p %p --label 'web %h'".into()));
            c.send = Some(Escaped("ignored".into()));
            c.expect = Some(Escaped("OK".into()));
            c.check_port = Some(PortSpec::Service("https".into()));
        });
        match kind(&c, Protocol::Tcp) {
            ProbeKind::Program {
                argv,
                expect: Some(Expect::Exact(e)),
                dynamic: false,
            } => {
                assert_eq!(
                    argv,
                    [
                        "/usr/lib/check",
                        "-h",
                        "192.0.2.10",
                        "-p",
                        "443",
                        "--label",
                        "web 192.0.2.10"
                    ]
                );
                assert_eq!(e, b"OK");
            }
            k => panic!("{k:?}"),
        }
        assert!(build(
            &settings(|c| c.check = Some(CheckKind::None)),
            Protocol::Tcp
        )
        .unwrap()
        .is_none());
        assert!(matches!(
            kind(
                &settings(|c| c.check = Some(CheckKind::Ping)),
                Protocol::Udp
            ),
            ProbeKind::Ping
        ));
    }

    #[test]
    fn a_digest_is_32_hex_digits() {
        assert_eq!(
            parse_digest("0EE5DBFCBA889EC228D56F564A880D56").map(|d| d[0]),
            Some(0x0e)
        );
        for bad in [
            "0ee5",
            "0ee5dbfcba889ec228d56f564a880d5g",
            "",
            "0ee5dbfcba889ec228d56f564a880d5600",
        ] {
            assert_eq!(parse_digest(bad), None, "{bad}");
        }
        let c = settings(|c| {
            c.check = Some(CheckKind::Http);
            c.check_digest = Some(Word("xyz".into()));
        });
        assert!(matches!(
            build(&c, Protocol::Tcp),
            Err(CheckSettingsError::Digest(d)) if d == "xyz"
        ));
    }

    #[test]
    fn http_settings_and_their_defaults() {
        let c = settings(|c| c.check = Some(CheckKind::Http));
        let p = build(&c, Protocol::Tcp).unwrap().unwrap();
        match &p.kind {
            ProbeKind::Http { tls: false, urls } => match urls.as_slice() {
                [HttpUrl {
                    path,
                    host,
                    status,
                    body: None,
                    digest: None,
                }] => {
                    assert_eq!(path, "/");
                    assert_eq!(host, "192.0.2.10:8080");
                    assert_eq!(status, &[(200, 299)]);
                }
                u => panic!("{u:?}"),
            },
            k => panic!("{k:?}"),
        }
        let c = settings(|c| {
            c.check = Some(CheckKind::Https);
            c.check_port = Some(PortSpec::Number(443));
            c.check_status = Some(StatusSet(vec![(200, 200), (301, 302)]));
        });
        let p = build(&c, Protocol::Tcp).unwrap().unwrap();
        assert_eq!(p.port, 443);
        match &p.kind {
            ProbeKind::Http { tls: true, urls } => {
                assert_eq!(urls[0].host, "192.0.2.10", "default port left out");
                assert_eq!(urls[0].status, &[(200, 200), (301, 302)]);
            }
            k => panic!("{k:?}"),
        }
        let c = settings(|c| c.check = Some(CheckKind::Http));
        let p = Probe::from_settings(&c, Protocol::Tcp, LO6, 80)
            .unwrap()
            .unwrap();
        assert!(matches!(&p.kind, ProbeKind::Http { urls, .. } if urls[0].host == "[::1]"));
    }

    /// `check_url`: a page takes what it does not say from the check's keywords, and
    /// replaces `check_path`; the identity tells different page lists apart.
    #[test]
    fn pages_of_check_url_fall_back_to_the_check_keywords() {
        use crate::config::url::{UrlCheck, UrlList};
        let digest = "0ee5dbfcba889ec228d56f564a880d56";
        let c = settings(|c| {
            c.check = Some(CheckKind::Http);
            c.check_path = Some(Text("/unused".into()));
            c.check_host = Some(Word("www.example.com".into()));
            c.check_status = Some(StatusSet(vec![(200, 200)]));
            c.check_regex = Some(Text("ok".into()));
            let mut second = UrlCheck::new("/b");
            second.status = Some(StatusSet(vec![(301, 301)]));
            second.host = Some("other.example.com".into());
            second.regex = Some("moved".into());
            second.digest = Some(digest.into());
            c.check_url = Some(UrlList(vec![UrlCheck::new("/a"), second]));
        });
        let p = build(&c, Protocol::Tcp).unwrap().unwrap();
        let ProbeKind::Http { urls, .. } = &p.kind else {
            panic!("{:?}", p.kind)
        };
        assert_eq!(urls.len(), 2);
        assert_eq!(urls[0].path, "/a");
        assert_eq!(urls[0].host, "www.example.com");
        assert_eq!(urls[0].status, &[(200, 200)]);
        assert_eq!(urls[0].body.as_ref().map(|r| r.as_str()), Some("ok"));
        assert!(urls[0].digest.is_none());
        assert_eq!(urls[1].host, "other.example.com");
        assert_eq!(urls[1].status, &[(301, 301)]);
        assert_eq!(urls[1].body.as_ref().map(|r| r.as_str()), Some("moved"));
        assert!(
            matches!(urls[1].digest, Some(crate::pulse::io::probe::Digest::Expect(d)) if d[0] == 0x0e)
        );
        let one = settings(|c| {
            c.check = Some(CheckKind::Http);
            c.check_url = Some(UrlList(vec![UrlCheck::new("/a")]));
        });
        let a = build(&one, Protocol::Tcp).unwrap().unwrap().identity();
        assert_ne!(a, p.identity());
        assert!(a.contains("GET \"/a\""), "{a}");
        let bad = settings(|c| {
            c.check = Some(CheckKind::Http);
            let mut u = UrlCheck::new("/a");
            u.digest = Some("nope".into());
            c.check_url = Some(UrlList(vec![u]));
        });
        assert_eq!(
            build(&bad, Protocol::Tcp).unwrap_err().to_string(),
            "check_url: `nope` is not an MD5 digest (32 hexadecimal digits)"
        );
    }

    #[test]
    fn settings_errors_name_the_keyword() {
        let err =
            |f: fn(&mut CheckSettings)| build(&settings(f), Protocol::Tcp).unwrap_err().to_string();
        let e = err(|c| {
            c.expect = Some(Escaped("HTTP/1.[01 200".into()));
            c.use_regex = Some(true);
        });
        assert_eq!(
            e,
            "expect: invalid regular expression `HTTP/1.[01 200`: unclosed character class"
        );
        assert!(
            e.starts_with("expect: invalid regular expression `HTTP/1.[01 200`"),
            "{e}"
        );
        let e = err(|c| {
            c.check = Some(CheckKind::Http);
            c.check_regex = Some(Text("(unclosed".into()));
        });
        assert!(
            e.starts_with("check_regex: invalid regular expression"),
            "{e}"
        );
        let e = err(|c| {
            c.check = Some(CheckKind::Http);
            c.check_regex = Some(Text(r"(?:\w{100}){100}".into()));
        });
        assert!(
            e.starts_with("check_regex:") && e.contains("too complex"),
            "{e}"
        );
        let e = err(|c| c.check = Some(CheckKind::Program));
        assert!(e.starts_with("send_program: required"), "{e}");
        let e = err(|c| c.send_program = Some(Text("check 'unclosed".into())));
        assert!(e.starts_with("send_program: no closing '"), "{e}");
        let e = err(|c| c.send_program = Some(Text("   ".into())));
        assert!(e.starts_with("send_program: the command is empty"), "{e}");
        let e = err(|c| {
            c.check = Some(CheckKind::Http);
            c.check_path = Some(Text("health".into()));
        });
        assert!(e.starts_with("check_path: `health`"), "{e}");
        let e = err(|c| {
            c.check = Some(CheckKind::Https);
            c.check_path = Some(Text("/a b".into()));
        });
        assert!(e.starts_with("check_path:"), "{e}");
        let e = err(|c| c.check_port = Some(PortSpec::Service("no-such-service".into())));
        assert!(e.starts_with("check_port: unknown service name"), "{e}");
        let e = err(|c| c.timeout = Some(Secs(0)));
        assert!(e.starts_with("timeout:"), "{e}");
    }

    #[test]
    fn identity_is_the_same_for_the_same_check_only() {
        let id = |c: &CheckSettings, port: u16| {
            Probe::from_settings(c, Protocol::Tcp, "192.0.2.10".parse().unwrap(), port)
                .unwrap()
                .unwrap()
                .identity()
        };
        let http = settings(|c| {
            c.check = Some(CheckKind::Http);
            c.check_regex = Some(Text("ok".into()));
        });
        // The same check of the same server under two virtual servers: one identity.
        let vs_a = settings(|c| c.timeout = Some(Secs(5000)));
        let vs_b = settings(|c| {
            c.timeout = Some(Secs(5000));
            c.reentry = Some(Secs(60000)); // policy only, not the probe
        });
        assert_eq!(id(&http.overlay(&vs_a), 80), id(&http.overlay(&vs_b), 80));
        assert_eq!(
            id(&http.overlay(&vs_a), 80),
            "http 192.0.2.10:80 GET \"/\" host \"192.0.2.10\" status [(200, 299)] body \"ok\" timeout 5"
        );
        assert_ne!(id(&http, 80), id(&http, 81));
        assert_ne!(
            id(&http, 80),
            id(&http.overlay(&vs_a), 80),
            "timeouts differ"
        );
        let other_regex = settings(|c| {
            c.check = Some(CheckKind::Http);
            c.check_regex = Some(Text("OK".into()));
        });
        assert_ne!(id(&http, 80), id(&other_regex, 80));
        // Where the port plays no part, it does not split identical checks.
        let ping = settings(|c| c.check = Some(CheckKind::Ping));
        assert_eq!(id(&ping, 80), id(&ping, 443));
        let prog = settings(|c| c.send_program = Some(Text("/bin/check %h".into())));
        assert_eq!(id(&prog, 80), id(&prog, 443));
        let prog_p = settings(|c| c.send_program = Some(Text("/bin/check %h %p".into())));
        assert_ne!(id(&prog_p, 80), id(&prog_p, 443));
        let se = |expect: &str, regex: bool| {
            id(
                &settings(|c| {
                    c.expect = Some(Escaped(expect.into()));
                    c.use_regex = Some(regex);
                }),
                80,
            )
        };
        assert_ne!(se("OK", false), se("OK", true));
        assert_eq!(
            se("OK\r\n", false),
            "tcp-send-expect 192.0.2.10:80 expect prefix \"OK\\r\\n\" timeout 10"
        );
    }
}

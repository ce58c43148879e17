//! `lvs-director genhash URL`: the MD5 of a page's body, as keepalived's genhash prints
//! it, for `check_digest`. The request is the one the HTTP(S) check sends (same client,
//! same Host header, TLS without certificate verification).

use std::net::ToSocketAddrs;
use std::time::Duration;

use super::{Failure, Outcome};
use crate::config::value::{CheckKind, Protocol, Secs, StatusSet, Text, Word};
use crate::config::CheckSettings;
use crate::pulse::io::probe::{Digest, Probe, ProbeKind};

/// What a URL says: scheme, host (as written), port, request target.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse(url: &str) -> Result<Target, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: not a URL ({e})"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("{url}: http:// or https:// expected")),
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("{url}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    Ok(Target {
        tls,
        host,
        port,
        path,
    })
}

pub fn genhash(url: &str, host_header: Option<&str>, timeout: f64) -> Outcome {
    let t = parse(url).map_err(Failure::invalid)?;
    let addr = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| Failure::io(format!("{url}: cannot resolve {}: {e}", t.host)))?
        .next()
        .ok_or_else(|| Failure::io(format!("{url}: {} has no address", t.host)))?;
    let check = CheckSettings {
        check: Some(if t.tls {
            CheckKind::Https
        } else {
            CheckKind::Http
        }),
        check_path: Some(Text(t.path.clone())),
        check_host: host_header.map(|h| Word(h.to_string())),
        // Any status: the digest is of whatever the page says.
        check_status: Some(StatusSet(vec![(100, 599)])),
        timeout: Some(Secs((timeout.max(0.001) * 1000.0) as u64)),
        ..Default::default()
    };
    let mut probe = Probe::from_settings(&check, Protocol::Tcp, addr.ip(), t.port)
        .map_err(|e| Failure::invalid(format!("{url}: {e}")))?
        .ok_or_else(|| Failure::invalid(format!("{url}: no check to run")))?;
    if let ProbeKind::Http { urls, .. } = &mut probe.kind {
        for u in urls {
            u.digest = Some(Digest::Report);
        }
    }
    probe.timeout = Duration::from_secs_f64(timeout.max(0.001));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io(format!("cannot start a runtime: {e}")))?;
    let outcome = runtime.block_on(probe.run());
    if !outcome.ok {
        return Err(Failure::invalid(format!("{url}: {}", outcome.detail)));
    }
    println!("{url}: {}", outcome.detail);
    if let Some(hex) = outcome.detail.rsplit(' ').next() {
        println!("check_digest = {hex}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_scheme_host_port_and_target() {
        assert_eq!(
            parse("http://10.0.0.2/health?full=1").unwrap(),
            Target {
                tls: false,
                host: "10.0.0.2".into(),
                port: 80,
                path: "/health?full=1".into()
            }
        );
        let t = parse("https://[2001:db8::2]:8443").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (true, "2001:db8::2", 8443, "/")
        );
        assert!(parse("ftp://x/")
            .unwrap_err()
            .contains("http:// or https://"));
        assert!(parse("not a url").is_err());
    }
}

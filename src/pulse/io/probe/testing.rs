//! Test helpers shared by the kinds' tests: loopback addresses, a probe with a short
//! timeout, throwaway servers, and assertions on an [`Outcome`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::{build_regex, Expect, Outcome, Probe, ProbeKind};
use crate::config::value::Secs;
use crate::pulse::io::scripts::Policy;

pub(super) const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub(super) const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// The loopback addresses to test on: ::1 only where the host has IPv6.
pub(super) fn loopbacks() -> Vec<IpAddr> {
    let v6 = std::net::UdpSocket::bind((LO6, 0)).is_ok();
    if !v6 {
        eprintln!("skipped: no ::1 here");
    }
    [LO4, LO6]
        .into_iter()
        .filter(|a| a.is_ipv4() || v6)
        .collect()
}

pub(super) fn probe(kind: ProbeKind, addr: IpAddr, port: u16, millis: u64) -> Probe {
    Probe {
        kind,
        addr,
        port,
        sctp: false,
        timeout: Duration::from_millis(millis),
        // The tests' programs are in PATH and temporary folders; the scripts
        // directory's rule has its own tests.
        policy: Arc::new(Policy::Any),
        source: None,
    }
}

/// A port with nothing listening (TCP or UDP): bound, then released.
pub(super) async fn closed_tcp_port(addr: IpAddr) -> u16 {
    let l = TcpListener::bind((addr, 0)).await.unwrap();
    l.local_addr().unwrap().port()
}

/// A TCP server answering each connection with `handler(request bytes)`.
pub(super) async fn tcp_server<F>(addr: IpAddr, handler: F) -> u16
where
    F: Fn(TcpStream) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync
        + 'static,
{
    let l = TcpListener::bind((addr, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(handler(s));
        }
    });
    port
}

pub(super) fn assert_ok(o: &Outcome) {
    assert!(o.ok, "expected success: {o:?}");
}

pub(super) fn assert_fail(o: &Outcome, detail: &str) {
    assert!(!o.ok, "expected failure: {o:?}");
    assert!(o.detail.contains(detail), "{detail:?} not in {o:?}");
}

/// A timed-out check fails, says so, and ends close to its timeout.
pub(super) fn assert_timed_out(o: &Outcome, millis: u64, stage: &str) {
    assert_fail(o, &format!("timed out after {} s", Secs(millis)));
    assert!(o.detail.contains(stage), "{stage:?} not in {o:?}");
    assert!(o.elapsed >= Duration::from_millis(millis), "{o:?}");
    assert!(o.elapsed < Duration::from_millis(millis + 1000), "{o:?}");
}

pub(super) fn regex(r: &str) -> Expect {
    Expect::Regex(build_regex(r).unwrap())
}

/// Accepts and holds connections without a word.
pub(super) async fn mute_server(addr: IpAddr) -> u16 {
    tcp_server(addr, |s| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        })
    })
    .await
}

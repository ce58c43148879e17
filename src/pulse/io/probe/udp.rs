//! The UDP kind: a connected datagram socket, where silence passes unless `expect` is
//! set and an ICMP port unreachable fails.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{io_detail, show, Expect, MAX_REPLY};
use crate::config::value::Secs;

/// A datagram socket connected to `target`, from `source` when set (`check_source`).
pub(super) async fn connected(
    target: SocketAddr,
    source: Option<std::net::IpAddr>,
) -> Result<UdpSocket, String> {
    let local: SocketAddr = match (source, target) {
        (Some(src), _) => (src, 0).into(),
        (None, SocketAddr::V4(_)) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        (None, SocketAddr::V6(_)) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("socket from {}: {e}", local.ip()))?;
    socket.connect(target).await.map_err(|e| io_detail(&e))?;
    Ok(socket)
}

pub(super) async fn udp(
    target: SocketAddr,
    source: Option<std::net::IpAddr>,
    send: &[u8],
    expect: Option<&Expect>,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, String> {
    let socket = connected(target, source).await?;
    socket.send(send).await.map_err(|e| io_detail(&e))?;
    // The verdict is due before `run`'s own timeout, which would call it a failure.
    let margin = (timeout / 10).min(Duration::from_millis(100));
    let quiet_until = deadline - margin;
    let mut buf = vec![0u8; MAX_REPLY];
    let mut mismatch: Option<String> = None;
    loop {
        let n = match tokio::time::timeout_at(quiet_until, socket.recv(&mut buf)).await {
            Err(_) => {
                let secs = Secs(timeout.as_millis() as u64);
                return match (expect, mismatch) {
                    (None, _) => Ok(format!("no ICMP port unreachable within {secs} s")),
                    (Some(_), Some(m)) => Err(m),
                    (Some(_), None) => Err(format!("no reply within {secs} s")),
                };
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err("port unreachable (ICMP)".into())
            }
            Ok(Err(e)) => return Err(io_detail(&e)),
            Ok(Ok(n)) => n,
        };
        let reply = &buf[..n];
        match expect {
            None => return Ok(format!("reply of {n} bytes")),
            Some(e) if e.decide(reply, true) == Some(true) => {
                return Ok(format!("reply matched expect ({n} bytes)"))
            }
            // Another datagram may still match (a stale reply, a retransmission).
            Some(_) => mismatch = Some(format!("reply did not match expect: {}", show(reply, 80))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::pulse::io::probe::ProbeKind;

    #[tokio::test]
    async fn udp_refused_answered_and_silent() {
        // A responder answering `PONG <datagram>`.
        let responder = UdpSocket::bind((LO4, 0)).await.unwrap();
        let answered = responder.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = responder.recv_from(&mut buf).await {
                let mut reply = b"PONG ".to_vec();
                reply.extend_from_slice(&buf[..n]);
                let _ = responder.send_to(&reply, from).await;
            }
        });
        let silent_socket = UdpSocket::bind((LO4, 0)).await.unwrap();
        let silent = silent_socket.local_addr().unwrap().port();
        let closed = {
            let s = UdpSocket::bind((LO4, 0)).await.unwrap();
            s.local_addr().unwrap().port()
        };
        let udp = |send: &str, expect: Option<Expect>| ProbeKind::Udp {
            send: send.as_bytes().to_vec(),
            expect,
        };
        let prefix = |p: &str| Some(Expect::Prefix(p.as_bytes().to_vec()));
        let run = |k, port| async move { probe(k, LO4, port, 600).run().await };

        assert_ok(&run(udp("ping", prefix("PONG ping")), answered).await);
        assert_ok(&run(udp("ping", None), answered).await);
        assert_ok(&run(udp("ping", Some(regex("^PONG"))), answered).await);
        let o = run(udp("ping", prefix("PANG")), answered).await;
        assert_fail(&o, "reply did not match expect: \"PONG ping\"");
        assert!(o.elapsed < Duration::from_millis(600), "{o:?}");

        // ICMP port unreachable: a failure with or without expect.
        let o = run(udp("ping", None), closed).await;
        assert_fail(&o, "port unreachable");
        assert!(o.elapsed < Duration::from_millis(300), "{o:?}");
        assert_fail(
            &run(udp("ping", prefix("PONG")), closed).await,
            "port unreachable",
        );

        // Silence: fine without expect (nothing refused it), a failure with it.
        let o = run(udp("", None), silent).await;
        assert_ok(&o);
        assert!(o.detail.contains("no ICMP port unreachable"), "{o:?}");
        assert!(o.elapsed < Duration::from_millis(600), "{o:?}");
        let o = run(udp("ping", prefix("PONG")), silent).await;
        assert_fail(&o, "no reply within 0.6 s");
        drop(silent_socket);
    }

    #[tokio::test]
    async fn udp_over_ipv6() {
        if !loopbacks().contains(&LO6) {
            return;
        }
        let responder = UdpSocket::bind((LO6, 0)).await.unwrap();
        let port = responder.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok((_, from)) = responder.recv_from(&mut buf).await {
                let _ = responder.send_to(b"ok", from).await;
            }
        });
        let k = ProbeKind::Udp {
            send: b"?".to_vec(),
            expect: Some(Expect::Prefix(b"ok".to_vec())),
        };
        assert_ok(&probe(k, LO6, port, 1000).run().await);
    }
}

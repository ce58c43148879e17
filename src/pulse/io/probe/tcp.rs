//! The stream kinds: a TCP connect (or an SCTP association), and send/expect over it.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

use super::{io_detail, show, Expect, MAX_REPLY};

/// A TCP connection (an SCTP association with `sctp`), from `source` when set
/// (`check_source`, keepalived's `bindto`).
pub(super) async fn connect(
    target: SocketAddr,
    sctp: bool,
    source: Option<IpAddr>,
) -> Result<TcpStream, String> {
    let stream = match (sctp, source) {
        (true, _) => sctp_connect(target, source).await,
        (false, None) => TcpStream::connect(target).await,
        (false, Some(src)) => tcp_from(target, src).await,
    };
    stream.map_err(|e| match source {
        Some(src) if e.kind() == io::ErrorKind::AddrNotAvailable => {
            format!("cannot connect from {src}: {}", io_detail(&e))
        }
        _ => io_detail(&e),
    })
}

async fn tcp_from(target: SocketAddr, source: IpAddr) -> io::Result<TcpStream> {
    let socket = if target.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(target).await
}

/// An SCTP one-to-one association, driven through tokio's stream type: the socket is
/// a `SOCK_STREAM`, so reads, writes and readiness behave as for TCP.
async fn sctp_connect(target: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        Some(socket2::Protocol::from(libc::IPPROTO_SCTP)),
    )?;
    socket.set_nonblocking(true)?;
    if let Some(src) = source {
        socket.bind(&SocketAddr::new(src, 0).into())?;
    }
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    stream.writable().await?;
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    stream.peer_addr()?;
    Ok(stream)
}

/// Reads until `expect` is decided, the peer closes, or [`MAX_REPLY`] bytes.
pub(super) async fn read_expect<R: AsyncRead + Unpin>(
    stream: &mut R,
    expect: &Expect,
) -> Result<String, String> {
    let mut reply = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the reply: {}", io_detail(&e)))?;
        reply.extend_from_slice(&chunk[..n]);
        let end = n == 0 || reply.len() >= MAX_REPLY;
        match expect.decide(&reply, end) {
            Some(true) => return Ok(format!("reply matched expect ({} bytes)", reply.len())),
            Some(false) if reply.is_empty() => {
                return Err("connection closed without a reply".into())
            }
            Some(false) => return Err(format!("reply did not match expect: {}", show(&reply, 80))),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::super::testing::*;
    use super::*;
    use crate::pulse::io::probe::ProbeKind;

    /// keepalived's bindto: the connection comes from check_source (127.0.0.2 is a
    /// loopback address too); an address this machine lacks fails and says so.
    #[tokio::test]
    async fn a_check_connects_from_its_source_address() {
        let l = tokio::net::TcpListener::bind((LO4, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let mut p = probe(ProbeKind::Tcp, LO4, port, 2000);
        p.source = Some("127.0.0.2".parse().unwrap());
        let (o, accepted) = tokio::join!(p.run(), l.accept());
        assert_ok(&o);
        assert_eq!(accepted.unwrap().1.ip().to_string(), "127.0.0.2");
        p.source = Some("192.0.2.77".parse().unwrap());
        let o = p.run().await;
        assert_fail(&o, "cannot connect from 192.0.2.77");
        let u = tokio::net::UdpSocket::bind((LO4, 0)).await.unwrap();
        let uport = u.local_addr().unwrap().port();
        let mut p = probe(
            ProbeKind::Udp {
                send: b"ping".to_vec(),
                expect: None,
            },
            LO4,
            uport,
            300,
        );
        p.source = Some("127.0.0.3".parse().unwrap());
        let mut buf = [0u8; 16];
        let (_, got) = tokio::join!(p.run(), u.recv_from(&mut buf));
        assert_eq!(got.unwrap().1.ip().to_string(), "127.0.0.3");
    }

    #[tokio::test]
    async fn tcp_connect_passes_on_a_listener_and_fails_on_a_closed_port() {
        for addr in loopbacks() {
            let open = tcp_server(addr, |_s| Box::pin(async {})).await;
            assert_ok(&probe(ProbeKind::Tcp, addr, open, 2000).run().await);
            let closed = closed_tcp_port(addr).await;
            let o = probe(ProbeKind::Tcp, addr, closed, 2000).run().await;
            assert_eq!(o.detail, "connection refused");
            assert!(!o.ok);
        }
    }

    /// Echoes `ECHO <what it read>` in two segments, to show that a reply split over
    /// several reads still matches.
    async fn echo_server() -> u16 {
        tcp_server(LO4, |mut s| {
            Box::pin(async move {
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let _ = s.write_all(b"ECH").await;
                let _ = s.flush().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = s.write_all(b"O ").await;
                let _ = s.write_all(&buf[..n]).await;
            })
        })
        .await
    }

    fn send_expect(send: &str, expect: Option<Expect>) -> ProbeKind {
        ProbeKind::SendExpect {
            send: Some(send.as_bytes().to_vec()),
            expect,
        }
    }

    #[tokio::test]
    async fn send_expect_prefix_any_and_regex() {
        let port = echo_server().await;
        let run = |k| async move { probe(k, LO4, port, 2000).run().await };
        let prefix = |p: &str| Some(Expect::Prefix(p.as_bytes().to_vec()));
        // The reply starts with what was sent back: `send` went out as written.
        assert_ok(&run(send_expect("PING\r\n", prefix("ECHO PING\r\n"))).await);
        let o = run(send_expect("PING", prefix("ECHO PONG"))).await;
        assert_fail(&o, "reply did not match expect: \"ECHO PING\"");
        // A wrong first byte fails at once: only the first segment was read.
        let o = run(send_expect("PING", prefix("HTTP/1.1 200"))).await;
        assert_fail(&o, "reply did not match expect: \"ECH\"");
        assert_ok(&run(send_expect("x", Some(Expect::Any))).await);
        assert_ok(
            &run(send_expect(
                "status 200",
                Some(regex("st[a-z]+ 2[0-9]{2}$")),
            ))
            .await,
        );
        let o = run(send_expect("status 500", Some(regex("2[0-9]{2}")))).await;
        assert_fail(&o, "did not match expect");
        // Send without expect: connecting and writing is enough.
        let o = run(send_expect("hello", None)).await;
        assert_ok(&o);
        assert_eq!(o.detail, "connected, sent 5 bytes");
    }

    #[tokio::test]
    async fn expect_without_send_reads_a_banner_and_a_silent_close_fails() {
        let banner = tcp_server(LO4, |mut s| {
            Box::pin(async move {
                let _ = s.write_all(b"220 smtp.example ESMTP\r\n").await;
            })
        })
        .await;
        let k = ProbeKind::SendExpect {
            send: None,
            expect: Some(Expect::Prefix(b"220 ".to_vec())),
        };
        assert_ok(&probe(k.clone(), LO4, banner, 2000).run().await);
        let silent = tcp_server(LO4, |s| Box::pin(async move { drop(s) })).await;
        let o = probe(k, LO4, silent, 2000).run().await;
        assert_fail(&o, "connection closed without a reply");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let port = mute_server(LO4).await;
        let o = probe(send_expect("PING", Some(Expect::Any)), LO4, port, 400)
            .run()
            .await;
        assert_timed_out(&o, 400, "waiting for the reply");
    }

    #[tokio::test]
    async fn sctp_when_the_kernel_has_it() {
        use socket2::{Domain, Socket, Type};
        let sctp = socket2::Protocol::from(libc::IPPROTO_SCTP);
        let Ok(listener) = Socket::new(Domain::IPV4, Type::STREAM, Some(sctp)) else {
            eprintln!("skipped: no SCTP in this kernel");
            return;
        };
        listener.bind(&SocketAddr::new(LO4, 0).into()).unwrap();
        listener.listen(8).unwrap();
        let port = listener.local_addr().unwrap().as_socket().unwrap().port();
        let mut p = probe(ProbeKind::Tcp, LO4, port, 2000);
        p.sctp = true;
        assert_ok(&p.run().await);
        drop(listener);
        assert_fail(&p.run().await, "connection refused");
    }
}

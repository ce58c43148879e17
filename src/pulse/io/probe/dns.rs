//! DNS: one query over UDP, as keepalived's DNS_CHECK sends it (recursion desired,
//! class IN); the check passes on the first response carrying the query's id with
//! response code 0 (NOERROR), whatever its answers.

use std::net::{IpAddr, SocketAddr};

use super::io_detail;
pub use crate::config::dns::{qname, qtype};

/// The query: header (id, RD), one question.
pub fn query(id: u16, qname: &[u8], qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(12 + qname.len() + 4);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&0x0100u16.to_be_bytes());
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(qname);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// What a datagram says about the query `id`: `None` when it is not its response
/// (too short, another id, not a response), else the response code and answer count.
pub fn judge(id: u16, reply: &[u8]) -> Option<(u8, u16)> {
    if reply.len() < 12 || u16::from_be_bytes([reply[0], reply[1]]) != id {
        return None;
    }
    let flags = u16::from_be_bytes([reply[2], reply[3]]);
    if flags & 0x8000 == 0 {
        return None;
    }
    Some((
        (flags & 0x000f) as u8,
        u16::from_be_bytes([reply[6], reply[7]]),
    ))
}

fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "error",
    }
}

/// One DNS check; the caller bounds the time.
pub(super) async fn dns(
    target: SocketAddr,
    source: Option<IpAddr>,
    qname: &[u8],
    qtype: u16,
) -> Result<String, String> {
    let socket = super::udp::connected(target, source).await?;
    let id: u16 = rand::random();
    socket
        .send(&query(id, qname, qtype))
        .await
        .map_err(|e| io_detail(&e))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = socket.recv(&mut buf).await.map_err(|e| io_detail(&e))?;
        match judge(id, &buf[..n]) {
            None => continue,
            Some((0, answers)) => return Ok(format!("NOERROR, {answers} answer(s)")),
            Some((rcode, _)) => {
                return Err(format!("response code {rcode} ({})", rcode_name(rcode)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::UdpSocket;

    use super::super::testing::*;
    use super::*;
    use crate::pulse::io::probe::ProbeKind;

    #[test]
    fn the_query_is_keepalived_s() {
        assert_eq!(qname("").unwrap(), [0]);
        assert_eq!(qname(".").unwrap(), [0]);
        assert_eq!(
            qname("www.example.com.").unwrap(),
            b"\x03www\x07example\x03com\x00"
        );
        assert!(qname("a..b").is_err());
        assert!(qname(&"x".repeat(64)).is_err());
        assert_eq!(
            query(0xbeef, &[0], qtype("soa").unwrap()),
            [0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1]
        );
        assert_eq!(
            judge(7, &[0, 7, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0]),
            Some((0, 2))
        );
        assert_eq!(
            judge(7, &[0, 8, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0]),
            None,
            "id"
        );
        assert_eq!(
            judge(7, &[0, 7, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
            None,
            "query"
        );
        assert_eq!(
            judge(7, &[0, 7, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0]),
            Some((3, 0))
        );
    }

    /// A responder that answers with `rcode` after a stray datagram of another id;
    /// a silent one times out.
    #[tokio::test]
    async fn a_dns_server_answers_or_not() {
        for (rcode, want) in [(0u8, None), (3, Some("response code 3 (NXDOMAIN)"))] {
            let s = UdpSocket::bind((LO4, 0)).await.unwrap();
            let port = s.local_addr().unwrap().port();
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let (n, from) = s.recv_from(&mut buf).await.unwrap();
                assert!(
                    n > 12 && buf[n - 4..n] == [0, 1, 0, 1],
                    "type A, class IN: {:?}",
                    &buf[..n]
                );
                let mut stray = buf[..12].to_vec();
                stray[0] ^= 0xff;
                stray[2] |= 0x80;
                s.send_to(&stray, from).await.unwrap();
                let mut r = buf[..n].to_vec();
                r[2] |= 0x80;
                r[3] = 0x80 | rcode;
                s.send_to(&r, from).await.unwrap();
            });
            let k = ProbeKind::Dns {
                qname: qname("example.com").unwrap(),
                qtype: 1,
            };
            let o = probe(k, LO4, port, 2000).run().await;
            match want {
                None => {
                    assert_ok(&o);
                    assert_eq!(o.detail, "NOERROR, 0 answer(s)");
                }
                Some(w) => assert_fail(&o, w),
            }
        }
        let silent = UdpSocket::bind((LO4, 0)).await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let k = ProbeKind::Dns {
            qname: vec![0],
            qtype: 6,
        };
        let o = probe(k, LO4, port, 300).run().await;
        assert_timed_out(&o, 300, "waiting for the reply");
        drop(silent);
    }
}

//! The one request/acknowledgement loop of every netlink client here: requests go out
//! with consecutive sequence numbers (one `sendmsg` may carry a window of them), then
//! datagrams are read until each request has ended, with its acknowledgement or error
//! (`NLMSG_ERROR`) or, for a dump, its `NLMSG_DONE`; the data messages before the end
//! are the request's reply. Generic netlink (IPVS, [`crate::ipvs::client`]) and
//! `NETLINK_ROUTE` ([`crate::pulse::io::addr`]) both go through [`Channel`].
//!
//! [`Replies`] is the loop's reading half without a socket: it takes received datagrams
//! as bytes, so the framing is tested on golden bytes; [`Channel`] is the socket shell
//! around it, over any [`Transport`] (neli's `NlSocket`, or scripted datagrams in tests).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;

use super::{messages, status, FrameError, Kind, NLM_F_DUMP_INTR};

/// How long a reply may take before the kernel is declared unresponsive.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The receive buffer: a datagram larger than this would be cut short (and then fail
/// as a [`FrameError`]); the kernel keeps a dump's datagrams well under it.
const RECEIVE_BUFFER: usize = 1 << 16;

/// The reply to one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// Its data messages, whole (header included), in the order they came.
    pub data: Vec<Vec<u8>>,
    /// 0 when acknowledged (or a dump ended well), otherwise the errno the kernel
    /// refused the request with (positive).
    pub errno: i32,
    /// The kernel's explanation of a refusal, when the socket asked for extended
    /// acknowledgements.
    pub message: Option<String>,
    /// Some message was marked `NLM_F_DUMP_INTR`: the table changed during the dump.
    pub interrupted: bool,
}

/// Why an exchange could not be completed. The clients turn these into their own
/// errors, naming the operation.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Sending or receiving failed (a receive timeout is `WouldBlock`).
    #[error("netlink socket: {0}")]
    Io(#[source] io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// `NLMSG_OVERRUN`: the kernel dropped replies.
    #[error("the netlink receive buffer overflowed: replies were lost")]
    Overrun,
}

/// The replies to `count` requests numbered from `first`, as they are read.
#[derive(Debug)]
pub struct Replies {
    first: u32,
    replies: Vec<Reply>,
    ended: Vec<bool>,
    open: usize,
}

impl Replies {
    pub fn new(first: u32, count: usize) -> Replies {
        Replies {
            first,
            replies: vec![Reply::default(); count],
            ended: vec![false; count],
            open: count,
        }
    }

    /// Reads one received datagram; true once every request has ended. Messages for
    /// other sequence numbers (a late answer to a request abandoned after a timeout,
    /// or to a previous process on a reused port id), and anything after a request's
    /// end, are not ours and are dropped.
    pub fn read(&mut self, datagram: &[u8]) -> Result<bool, ExchangeError> {
        for m in messages(datagram) {
            let m = m?;
            let i = m.header.seq.wrapping_sub(self.first) as usize;
            if i >= self.replies.len() || self.ended[i] {
                continue;
            }
            let reply = &mut self.replies[i];
            reply.interrupted |= m.header.flags & NLM_F_DUMP_INTR != 0;
            match m.kind {
                Kind::Noop => {}
                Kind::Overrun => return Err(ExchangeError::Overrun),
                Kind::Data => reply.data.push(m.bytes.to_vec()),
                Kind::Status(_) | Kind::Done(_) => {
                    let s = status(m.bytes);
                    reply.errno = s.errno;
                    reply.message = s.message;
                    self.ended[i] = true;
                    self.open -= 1;
                }
            }
        }
        Ok(self.open == 0)
    }

    /// The replies, one per request in sequence order.
    pub fn into_replies(self) -> Vec<Reply> {
        self.replies
    }
}

/// What the loop needs of a netlink socket.
pub trait Transport {
    /// Sends one datagram (one or more requests).
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Receives one datagram into `buf`; its length.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

impl Transport for NlSocket {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        NlSocket::send(self, bytes, Msg::empty()).map(drop)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        NlSocket::recv(self, buf, Msg::empty()).map(|(n, _)| n)
    }
}

/// One netlink socket with its port id and sequence numbers.
pub struct Channel<T> {
    transport: T,
    pid: u32,
    seq: u32,
    buf: Vec<u8>,
}

impl Channel<NlSocket> {
    /// Opens a socket of `family` in the caller's network namespace, every wait on it
    /// bounded by [`REPLY_TIMEOUT`].
    pub fn open(family: NlFamily) -> io::Result<Channel<NlSocket>> {
        let sock = NlSocket::connect(family, None, Groups::empty())?;
        // SAFETY: the descriptor is owned by `sock`, which outlives this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(sock.as_raw_fd()) };
        let s = socket2::SockRef::from(&fd);
        s.set_read_timeout(Some(REPLY_TIMEOUT))?;
        s.set_write_timeout(Some(REPLY_TIMEOUT))?;
        let pid = sock.pid()?;
        // Distinct from a previous process's numbers, so stale replies are ignored.
        let seq = std::process::id().wrapping_mul(0x9e37_79b9);
        Ok(Channel::new(sock, pid, seq))
    }
}

impl<T: Transport> Channel<T> {
    /// A channel over `transport` whose port id is `pid`; the first request gets
    /// sequence number `seq + 1`.
    pub fn new(transport: T, pid: u32, seq: u32) -> Channel<T> {
        Channel {
            transport,
            pid,
            seq,
            buf: vec![0; RECEIVE_BUFFER],
        }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The port id requests carry.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Takes `n` consecutive sequence numbers and returns the first.
    pub fn reserve(&mut self, n: usize) -> u32 {
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(n as u32);
        first
    }

    /// Sends one datagram of requests.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.transport.send(bytes)
    }

    /// Reads until each of `count` requests numbered from `first` has ended; their
    /// replies in order.
    pub fn receive(&mut self, first: u32, count: usize) -> Result<Vec<Reply>, ExchangeError> {
        let mut replies = Replies::new(first, count);
        let mut done = count == 0;
        while !done {
            let n = self
                .transport
                .recv(&mut self.buf)
                .map_err(ExchangeError::Io)?;
            done = replies.read(&self.buf[..n.min(self.buf.len())])?;
        }
        Ok(replies.into_replies())
    }

    /// Reads the reply to the one request numbered `seq`.
    pub fn receive_one(&mut self, seq: u32) -> Result<Reply, ExchangeError> {
        Ok(self.receive(seq, 1)?.pop().unwrap_or_default())
    }

    /// Sends one request (numbered `seq`) and reads its reply.
    pub fn request(&mut self, bytes: &[u8], seq: u32) -> Result<Reply, ExchangeError> {
        self.send(bytes).map_err(ExchangeError::Io)?;
        self.receive_one(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlmsg::{NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK_TLVS};
    use std::collections::VecDeque;

    /// One message as the kernel frames it: header, payload, padding to 4 bytes.
    fn message(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(((16 + payload.len()) as u32).to_ne_bytes());
        m.extend(ty.to_ne_bytes());
        m.extend(flags.to_ne_bytes());
        m.extend(seq.to_ne_bytes());
        m.extend(4321u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    /// `NLMSG_ERROR` for request `seq`: the errno (0 acknowledges), then the request's
    /// header echoed back.
    fn status_message(seq: u32, errno: i32) -> Vec<u8> {
        let mut p = (-errno).to_ne_bytes().to_vec();
        p.extend(message(20, 0x05, seq, &[])[..16].iter());
        message(NLMSG_ERROR, 0, seq, &p)
    }

    /// `ip addr del 192.0.2.10/24 dev lo` (iproute2 6.1, sequence 1).
    const IP_ADDR_DEL_V4: [u8; 40] = [
        40, 0, 0, 0, 21, 0, 0x05, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, //
        2, 24, 0, 0, 1, 0, 0, 0, //
        8, 0, 2, 0, 192, 0, 2, 10, // IFA_LOCAL
        8, 0, 1, 0, 192, 0, 2, 10, // IFA_ADDRESS
    ];

    /// An acknowledgement: no data, errno 0.
    #[test]
    fn an_ack_ends_the_request() {
        let mut r = Replies::new(7, 1);
        assert!(r.read(&status_message(7, 0)).unwrap());
        assert_eq!(r.into_replies(), [Reply::default()]);
    }

    /// A refusal carries the errno, positive.
    #[test]
    fn an_error_carries_its_errno() {
        let mut r = Replies::new(7, 1);
        assert!(r.read(&status_message(7, libc::EEXIST)).unwrap());
        let reply = &r.into_replies()[0];
        assert_eq!(
            (reply.errno, reply.message.as_deref()),
            (libc::EEXIST, None)
        );
    }

    /// A dump answered in two datagrams: data messages marked multipart, then
    /// NLMSG_DONE; the request is open until the end, and its data kept in order.
    #[test]
    fn a_multipart_dump_ends_with_done() {
        const NLM_F_MULTI: u16 = 2;
        let mut first = message(16, NLM_F_MULTI, 9, &[1, 2, 3, 4, 5]);
        first.extend(message(16, NLM_F_MULTI, 9, &[6; 8]));
        let mut second = message(16, NLM_F_MULTI | NLM_F_DUMP_INTR, 9, &[7; 4]);
        second.extend(message(NLMSG_DONE, NLM_F_MULTI, 9, &0i32.to_ne_bytes()));
        let mut r = Replies::new(9, 1);
        assert!(!r.read(&first).unwrap(), "no NLMSG_DONE yet");
        assert!(r.read(&second).unwrap());
        let reply = &r.into_replies()[0];
        let payloads: Vec<_> = reply.data.iter().map(|m| &m[16..]).collect();
        assert_eq!(payloads, [&[1, 2, 3, 4, 5][..], &[6; 8], &[7; 4]]);
        assert_eq!(reply.errno, 0);
        assert!(
            reply.interrupted,
            "the second part was marked NLM_F_DUMP_INTR"
        );
        // A dump that fails ends with its errno in NLMSG_DONE.
        let mut r = Replies::new(9, 1);
        let done = message(NLMSG_DONE, NLM_F_MULTI, 9, &(-libc::EINTR).to_ne_bytes());
        assert!(r.read(&done).unwrap());
        assert_eq!(r.into_replies()[0].errno, libc::EINTR);
    }

    /// A message longer than what is left of its datagram is an error, not a panic,
    /// however the datagram was cut.
    #[test]
    fn a_truncated_message_is_an_error() {
        let mut d = message(16, 0, 3, &[0; 8]);
        d.extend(status_message(3, 0));
        let cut = d.len() - 10;
        let mut r = Replies::new(3, 1);
        match r.read(&d[..cut]) {
            Err(ExchangeError::Frame(FrameError { len: 36, left: 26 })) => {}
            other => panic!("{other:?}"),
        }
        for cut in 0..d.len() {
            let _ = Replies::new(3, 1).read(&d[..cut]);
        }
    }

    /// Replies to other sequence numbers (an earlier request abandoned after a
    /// timeout) are dropped, and so is anything after a request's end.
    #[test]
    fn other_sequence_numbers_are_not_ours() {
        let mut r = Replies::new(100, 1);
        let mut d = message(16, 0, 99, &[9; 4]);
        d.extend(status_message(99, libc::ENOENT));
        d.extend(status_message(101, 0));
        assert!(!r.read(&d).unwrap(), "still waiting for 100");
        let mut d = message(16, 0, 100, &[1; 4]);
        d.extend(status_message(100, 0));
        d.extend(message(16, 0, 100, &[2; 4]));
        assert!(r.read(&d).unwrap());
        let reply = &r.into_replies()[0];
        assert_eq!(reply.data.len(), 1);
        assert_eq!(&reply.data[0][16..], &[1; 4]);
        assert_eq!(reply.errno, 0);
    }

    /// A pipelined window: answers in any order, each to its own request; the
    /// sequence numbers may wrap around.
    #[test]
    fn a_window_is_answered_request_by_request() {
        let first = u32::MAX - 1;
        let mut r = Replies::new(first, 3);
        let mut d = status_message(first.wrapping_add(2), libc::ENOENT);
        d.extend(status_message(first, 0));
        d.extend(message(NLMSG_NOOP, 0, first, &[]));
        assert!(!r.read(&d).unwrap());
        assert!(r
            .read(&status_message(first.wrapping_add(1), libc::EEXIST))
            .unwrap());
        let errnos: Vec<_> = r.into_replies().iter().map(|r| r.errno).collect();
        assert_eq!(errnos, [0, libc::EEXIST, libc::ENOENT]);
    }

    /// NLMSG_OVERRUN: replies were lost, the exchange cannot be completed.
    #[test]
    fn an_overrun_fails_the_exchange() {
        let mut r = Replies::new(5, 1);
        let d = message(NLMSG_OVERRUN, 0, 5, &[]);
        assert!(matches!(r.read(&d), Err(ExchangeError::Overrun)));
    }

    /// An extended acknowledgement: the kernel's words after the echoed request,
    /// whether it echoes the whole request or (capped) its header only.
    #[test]
    fn extended_acks_carry_the_kernels_words() {
        // NLMSG_ERROR, ACK_TLVS|CAPPED: errno, the request's header, then the message.
        let mut m = vec![0u8; 16];
        m[4] = NLMSG_ERROR as u8;
        m[6..8].copy_from_slice(&(NLM_F_ACK_TLVS | crate::nlmsg::NLM_F_CAPPED).to_ne_bytes());
        m.extend_from_slice(&(-libc::EADDRNOTAVAIL).to_ne_bytes());
        m.extend_from_slice(&IP_ADDR_DEL_V4[..16]);
        m.extend_from_slice(&[28, 0, 1, 0]);
        m.extend_from_slice(b"ipv6: address not found\0");
        m[0] = m.len() as u8;
        let e = status(&m);
        assert_eq!(e.errno, libc::EADDRNOTAVAIL);
        assert_eq!(e.message.as_deref(), Some("ipv6: address not found"));
        // Uncapped: the whole request precedes the attributes.
        let mut u = m[..20].to_vec();
        u[6..8].copy_from_slice(&NLM_F_ACK_TLVS.to_ne_bytes());
        u.extend_from_slice(&IP_ADDR_DEL_V4);
        u.extend_from_slice(&m[36..]);
        u[0] = u.len() as u8;
        assert_eq!(status(&u), e);
        // A plain acknowledgement.
        let mut ack = vec![0u8; 36];
        ack[4] = NLMSG_ERROR as u8;
        assert_eq!(status(&ack), crate::nlmsg::Status::default());
        // Through the loop, as rtnetlink reads it.
        let mut r = Replies::new(0, 1);
        assert!(r.read(&m).unwrap());
        assert_eq!(r.into_replies()[0].message, e.message);
        // Attributes cut anywhere, or with lengths that would not move on, end the
        // walk without a panic.
        for cut in 0..m.len() {
            let _ = status(&m[..cut]);
        }
        let mut zero = m.clone();
        zero[36..38].copy_from_slice(&0u16.to_ne_bytes());
        assert_eq!(status(&zero).message, None);
    }

    /// Datagrams handed out in order; what was sent, kept.
    struct Script {
        replies: VecDeque<io::Result<Vec<u8>>>,
        sent: Vec<Vec<u8>>,
    }

    impl Transport for Script {
        fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.sent.push(bytes.to_vec());
            Ok(())
        }
        fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let d = self
                .replies
                .pop_front()
                .unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into()))?;
            buf[..d.len()].copy_from_slice(&d);
            Ok(d.len())
        }
    }

    fn channel(replies: Vec<io::Result<Vec<u8>>>) -> Channel<Script> {
        let script = Script {
            replies: replies.into(),
            sent: Vec::new(),
        };
        Channel::new(script, 4321, 41)
    }

    /// The whole loop without a socket: numbers taken, the request sent, datagrams
    /// read until its end, a stale reply skipped on the way.
    #[test]
    fn a_request_is_sent_and_read_to_its_end() {
        let mut c = channel(vec![
            Ok(status_message(40, libc::ETIMEDOUT)),
            Ok(message(16, 2, 42, &[5; 4])),
            Ok(message(NLMSG_DONE, 2, 42, &0i32.to_ne_bytes())),
        ]);
        let seq = c.reserve(1);
        assert_eq!(seq, 42);
        let reply = c.request(b"request", seq).unwrap();
        assert_eq!(reply.data.len(), 1);
        assert_eq!(c.transport().sent, [b"request".to_vec()]);
        assert_eq!(c.reserve(3), 43, "numbers are consecutive");
        assert_eq!(c.reserve(1), 46);
    }

    /// A socket that stops answering is an I/O error (the timeout), not a hang.
    #[test]
    fn no_answer_is_an_io_error() {
        let mut c = channel(vec![Ok(message(16, 2, 42, &[5; 4]))]);
        match c.receive(42, 1) {
            Err(ExchangeError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            other => panic!("{other:?}"),
        }
        assert!(channel(vec![]).receive(1, 0).unwrap().is_empty());
    }
}

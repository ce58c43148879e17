//! Netlink framing shared by the IPVS client ([`crate::ipvs::client`]) and rtnetlink
//! ([`crate::pulse::io::addr`]): the 16-byte message header, native-endian integers,
//! [`messages`], which splits a received datagram into its messages and says what each
//! is (data, acknowledgement or error, end of dump, overrun), and [`status`], the errno
//! and the kernel's own words of an acknowledgement. [`exchange`] is the one
//! request/acknowledgement (and dump) loop both clients send and read through.
//! Reading never panics: a buffer too short for what is asked is `None` or an error.

pub mod exchange;

/// Length of `struct nlmsghdr`.
pub const HEADER_LEN: usize = 16;

/// `struct nlmsghdr`, as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The whole message's length, header included.
    pub len: usize,
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
}

impl Header {
    /// The header at the start of `b`, if `b` holds one.
    pub fn read(b: &[u8]) -> Option<Header> {
        Some(Header {
            len: u32_at(b, 0)? as usize,
            ty: u16_at(b, 4)?,
            flags: u16_at(b, 6)?,
            seq: u32_at(b, 8)?,
        })
    }
}

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

/// What one message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A payload for the caller to decode.
    Data,
    /// `NLMSG_ERROR`: 0 acknowledges the request, otherwise a negative errno.
    Status(i32),
    /// `NLMSG_DONE`, the end of a dump, with the dump's status (0 or a negative errno).
    Done(i32),
    /// `NLMSG_OVERRUN`: replies were lost.
    Overrun,
    /// `NLMSG_NOOP`: nothing.
    Noop,
}

/// One message of a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub header: Header,
    pub kind: Kind,
    /// The whole message, header included.
    pub bytes: &'a [u8],
}

/// A message whose length does not fit the datagram it came in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("netlink message length {len} with {left} bytes left")]
pub struct FrameError {
    pub len: usize,
    pub left: usize,
}

/// The messages of one received datagram, in order; an error ends the walk. Trailing
/// bytes too short for a header are ignored, as the kernel's own parser does.
pub fn messages(datagram: &[u8]) -> impl Iterator<Item = Result<Message<'_>, FrameError>> {
    let mut at = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at + HEADER_LEN > datagram.len() {
            return None;
        }
        let b = &datagram[at..];
        let header = Header::read(b)?;
        if header.len < HEADER_LEN || header.len > b.len() {
            failed = true;
            return Some(Err(FrameError {
                len: header.len,
                left: b.len(),
            }));
        }
        let bytes = &b[..header.len];
        at += (header.len + 3) & !3;
        let status = || u32_at(bytes, HEADER_LEN).map_or(0, |e| e as i32);
        let kind = match header.ty {
            NLMSG_NOOP => Kind::Noop,
            NLMSG_ERROR => Kind::Status(status()),
            NLMSG_DONE => Kind::Done(status()),
            NLMSG_OVERRUN => Kind::Overrun,
            _ => Kind::Data,
        };
        Some(Ok(Message {
            header,
            kind,
            bytes,
        }))
    })
}

/// `NLM_F_DUMP_INTR`: the table changed while the dump was read; it may be inconsistent.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_CAPPED` on an `NLMSG_ERROR`: only the request's header is echoed.
pub const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS` on an `NLMSG_ERROR` or `NLMSG_DONE`: extended-ack attributes follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the kernel's explanation, a string.
pub const NLMSGERR_ATTR_MSG: u16 = 1;

/// What an `NLMSG_ERROR` (acknowledgement or refusal) or `NLMSG_DONE` says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// 0 for an acknowledgement (or a dump that ended well), otherwise the errno
    /// (positive, as `errno` is).
    pub errno: i32,
    /// The kernel's own explanation (`NLMSGERR_ATTR_MSG`), when the socket asked for
    /// extended acknowledgements, e.g. "ipv6: address not found".
    pub message: Option<String>,
}

/// The status of one `NLMSG_ERROR` or `NLMSG_DONE` message (header included).
pub fn status(msg: &[u8]) -> Status {
    // The kernel sends -errno; wrapping, so that a hostile i32::MIN reads without a panic.
    let errno = u32_at(msg, HEADER_LEN).map_or(0, |e| (e as i32).wrapping_neg());
    let flags = u16_at(msg, 6).unwrap_or(0);
    let mut message = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // NLMSG_ERROR carries the request's header (and, unless capped, its payload)
        // before the attributes; NLMSG_DONE only the errno.
        let mut at = HEADER_LEN + 4;
        if u16_at(msg, 4) == Some(NLMSG_ERROR) {
            let request_len = u32_at(msg, at).unwrap_or(0) as usize;
            at = at.saturating_add(if flags & NLM_F_CAPPED != 0 {
                HEADER_LEN
            } else {
                request_len.max(HEADER_LEN)
            });
            at = at.saturating_add(3) & !3;
        }
        while let (Some(len), Some(ty)) = (u16_at(msg, at), u16_at(msg, at.saturating_add(2))) {
            let len = usize::from(len);
            // A length under an attribute header's would never move on, one past the
            // end is cut short: either ends the walk.
            let Some(attr) = msg.get(at + 4..at + len) else {
                break;
            };
            if ty == NLMSGERR_ATTR_MSG {
                message = Some(c_string(attr));
            }
            at += (len + 3) & !3;
        }
    }
    Status { errno, message }
}

/// A NUL-terminated (or not) string attribute. neli's own `String` parser drops the
/// last byte unconditionally and panics on an empty payload.
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The native-endian `u32` at `at`.
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_ne_bytes(bytes))
}

/// The native-endian `u16` at `at`.
pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let bytes: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_ne_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_integers_read_back_and_short_buffers_are_none() {
        let mut b = Vec::new();
        b.extend(36u32.to_ne_bytes());
        b.extend(2u16.to_ne_bytes());
        b.extend(0x100u16.to_ne_bytes());
        b.extend(7u32.to_ne_bytes());
        b.extend(4321u32.to_ne_bytes()); // the port id, not read
        b.extend(1234u32.to_ne_bytes());
        assert_eq!(
            Header::read(&b),
            Some(Header {
                len: 36,
                ty: 2,
                flags: 0x100,
                seq: 7
            })
        );
        assert_eq!(u32_at(&b, 16), Some(1234));
        assert_eq!(Header::read(&b[..11]), None);
        assert_eq!(u32_at(&b, 17), None);
        assert_eq!(u16_at(&b, usize::MAX), None);
    }

    fn message(ty: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(((HEADER_LEN + payload.len()) as u32).to_ne_bytes());
        m.extend(ty.to_ne_bytes());
        m.extend(0u16.to_ne_bytes());
        m.extend(seq.to_ne_bytes());
        m.extend(99u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    /// A dump's reply as the kernel sends it: data messages (one not a multiple of 4
    /// long, so the next starts after padding), then NLMSG_DONE.
    #[test]
    fn a_dump_reply_splits_into_its_messages() {
        let mut d = message(20, 7, &[1, 2, 3, 4, 5]);
        d.extend(message(20, 7, &[6; 8]));
        d.extend(message(NLMSG_DONE, 7, &0i32.to_ne_bytes()));
        let got: Vec<_> = messages(&d).collect::<Result<_, _>>().unwrap();
        let kinds: Vec<_> = got.iter().map(|m| (m.header.seq, m.kind)).collect();
        assert_eq!(
            kinds,
            [(7, Kind::Data), (7, Kind::Data), (7, Kind::Done(0))]
        );
        assert_eq!(&got[0].bytes[HEADER_LEN..], &[1, 2, 3, 4, 5]);
        assert_eq!(got[1].bytes.len(), HEADER_LEN + 8);
    }

    /// An acknowledgement, a refusal with its errno (the request echoed after it),
    /// an overrun and a no-op.
    #[test]
    fn statuses_carry_their_errno() {
        let mut ack = 0i32.to_ne_bytes().to_vec();
        ack.extend([0; 16]);
        let mut refused = (-libc::EEXIST).to_ne_bytes().to_vec();
        refused.extend([0; 16]);
        let mut d = message(NLMSG_ERROR, 1, &ack);
        d.extend(message(NLMSG_ERROR, 2, &refused));
        d.extend(message(NLMSG_OVERRUN, 3, &[]));
        d.extend(message(NLMSG_NOOP, 4, &[]));
        let kinds: Vec<_> = messages(&d).map(|m| m.unwrap().kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Status(0),
                Kind::Status(-libc::EEXIST),
                Kind::Overrun,
                Kind::Noop
            ]
        );
    }

    /// A length that overruns the datagram is an error and ends the walk; a length
    /// under a header's is one too; leftovers shorter than a header are ignored.
    #[test]
    fn bad_lengths_are_errors_not_panics() {
        let mut d = message(20, 1, &[0; 8]);
        d.truncate(d.len() - 4);
        let r: Vec<_> = messages(&d).collect();
        assert_eq!(r, [Err(FrameError { len: 24, left: 20 })]);
        let mut short = message(20, 1, &[]);
        short[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(messages(&short).count(), 1);
        assert!(messages(&short).next().unwrap().is_err());
        let mut tail = message(20, 1, &[]);
        tail.extend([0; 10]);
        assert_eq!(messages(&tail).count(), 1);
        for cut in 0..tail.len() {
            let _ = messages(&tail[..cut]).count();
        }
    }
}

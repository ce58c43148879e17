//! Netlink framing shared by the IPVS client ([`crate::ipvs::client`]) and rtnetlink
//! ([`crate::pulse::io::addr`]): the 16-byte message header, native-endian integers,
//! and [`messages`], which splits a received datagram into its messages and says what
//! each is (data, acknowledgement or error, end of dump, overrun). Both clients' receive
//! loops read through it and differ only in which sequence numbers they wait for.
//! Reading never panics: a buffer too short for what is asked is `None` or an error.

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

//! The 16-byte netlink message header and native-endian integers in a received
//! buffer: what the IPVS client ([`crate::ipvs::client`]) and rtnetlink
//! ([`crate::pulse::io::addr`]) both read before decoding a message's payload. Reading
//! never panics: a buffer too short for what is asked is `None`.

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
}

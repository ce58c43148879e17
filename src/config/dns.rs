//! The question of a DNS check (`check_dns_name`, `check_dns_type`): keepalived's
//! DNS_CHECK `name` and `type`, checked when the configuration is, and put in wire
//! form for the probe.

/// The record types a DNS check may ask for (keepalived's list).
pub const TYPES: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
];

/// The type number of a type name (any case).
pub fn qtype(name: &str) -> Option<u16> {
    TYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, t)| *t)
}

/// The question's name in wire form, or why it cannot be one. "" and "." are the root.
pub fn qname(name: &str) -> Result<Vec<u8>, String> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let mut out = Vec::with_capacity(trimmed.len() + 2);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("`{name}`: each label must have 1 to 63 characters"));
            }
            if !label.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!("`{name}`: only printable ASCII is allowed"));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() > 255 {
        return Err(format!("`{name}`: longer than 255 bytes"));
    }
    Ok(out)
}

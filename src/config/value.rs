//! The value types of `lvs.cf` keywords: how each is read from tokens and written back.
//!
//! Every type here parses what Piranha's parser accepts for it (C `strtol` integers,
//! dotted masks, hostnames kept as names) and renders one canonical form that parses
//! back to the same value.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::lexer::Token;
use super::services;

/// Why a keyword's value was refused; the parser adds file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    /// Index of the offending token among the keyword's arguments (for the column).
    pub arg: usize,
    pub message: String,
}

impl ValueError {
    pub fn new(arg: usize, message: impl Into<String>) -> Self {
        ValueError {
            arg,
            message: message.into(),
        }
    }
}

/// A keyword value: parsed from the tokens after `=`, rendered back to text.
pub trait Value: Sized {
    /// What the keyword expects, for error messages ("an integer", "IP DEVICE").
    const EXPECTED: &'static str;
    /// True for strings taken whole (commands, send/expect): a form field holds the
    /// text between the quotes, not `lvs.cf` tokens.
    const VERBATIM: bool = false;
    fn parse(args: &[Token]) -> Result<Self, ValueError>;
    /// Canonical text after `keyword = `.
    fn render(&self) -> String;
    /// Why this value (built by a program rather than parsed) cannot be written to
    /// `lvs.cf` so that it reads back unchanged.
    fn unwritable(&self) -> Option<&'static str> {
        None
    }
    /// A remark about how the value was read, worth a warning (e.g. an address in
    /// `inet_aton`'s octal form).
    fn note(_args: &[Token]) -> Option<String> {
        None
    }
}

/// Exactly one argument, or a Piranha-style error naming what was expected.
pub fn one<'a>(args: &'a [Token], expected: &str) -> Result<&'a Token, ValueError> {
    match args {
        [] => Err(ValueError::new(
            0,
            format!("missing arguments: expected {expected}"),
        )),
        [t] => Ok(t),
        [_, extra, ..] => Err(ValueError::new(
            1,
            format!(
                "unexpected arguments: `{}` after the value (expected {expected}; quote values that contain spaces)",
                extra.text
            ),
        )),
    }
}

/// Parses an integer the way C's `strtol(s, &end, 0)` does: optional sign, `0x` hex,
/// leading-`0` octal, no trailing junk.
pub fn parse_c_integer(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, h)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            const EXPECTED: &'static str = "an integer";
            fn parse(args: &[Token]) -> Result<Self, ValueError> {
                let t = one(args, Self::EXPECTED)?;
                let v = parse_c_integer(&t.text).ok_or_else(|| {
                    ValueError::new(0, format!("integer expected, found `{}`", t.text))
                })?;
                <$t>::try_from(v).map_err(|_| {
                    ValueError::new(
                        0,
                        format!("integer out of range: {v} (allowed {}..={})", <$t>::MIN, <$t>::MAX),
                    )
                })
            }
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
int_value!(u8, u16, u32, i32);

impl Value for bool {
    const EXPECTED: &'static str = "0 or 1";
    /// Piranha reads booleans with `strtol`, so `01` and `0x1` are 1; the words
    /// yes/no, true/false and on/off are an lvs-director liberty.
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let t = one(args, Self::EXPECTED)?;
        match parse_c_integer(&t.text) {
            Some(0) => return Ok(false),
            Some(1) => return Ok(true),
            _ => {}
        }
        match t.text.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" => Ok(true),
            "no" | "false" | "off" => Ok(false),
            _ => Err(ValueError::new(
                0,
                format!("boolean expected (0 or 1), found `{}`", t.text),
            )),
        }
    }
    fn render(&self) -> String {
        if *self { "1" } else { "0" }.into()
    }
}

/// A duration in seconds with millisecond resolution, written `6`, `0.2` or `1.25`.
/// Piranha's whole seconds are the integer case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Secs(pub u64);

impl Secs {
    /// The longest duration accepted: 30 days. Longer values are typos, and timers
    /// must not overflow.
    pub const MAX: Secs = Secs(30 * 24 * 3600 * 1000);

    pub const fn from_secs(s: u64) -> Self {
        Secs(s * 1000)
    }
    pub const fn millis(self) -> u64 {
        self.0
    }
    pub fn as_duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, ms) = (self.0 / 1000, self.0 % 1000);
        if ms == 0 {
            write!(f, "{s}")
        } else {
            let frac = format!("{ms:03}");
            write!(f, "{s}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl Value for Secs {
    const EXPECTED: &'static str = "seconds (e.g. 6 or 0.5)";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let t = one(args, Self::EXPECTED)?;
        let s = t.text.as_str();
        let err = || ValueError::new(0, format!("seconds expected (e.g. 6 or 0.5), found `{s}`"));
        let millis = if let Some((whole, frac)) = s.split_once('.') {
            let whole = if whole.is_empty() { "0" } else { whole };
            if !whole.bytes().all(|b| b.is_ascii_digit())
                || frac.is_empty()
                || !frac.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(err());
            }
            let frac = frac.trim_end_matches('0');
            if frac.len() > 3 {
                return Err(ValueError::new(
                    0,
                    format!("`{s}`: durations have millisecond resolution (at most 3 decimals)"),
                ));
            }
            let w: u64 = whole.parse().map_err(|_| err())?;
            let f: u64 = format!("{frac:0<3}").parse().map_err(|_| err())?;
            w.checked_mul(1000).and_then(|m| m.checked_add(f))
        } else {
            let v = parse_c_integer(s).ok_or_else(err)?;
            u64::try_from(v).ok().and_then(|v| v.checked_mul(1000))
        };
        match millis {
            Some(ms) if ms <= Secs::MAX.0 => Ok(Secs(ms)),
            _ => Err(ValueError::new(
                0,
                format!(
                    "duration out of range: `{s}` (0 to {} seconds, 30 days)",
                    Secs::MAX.0 / 1000
                ),
            )),
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

/// An address that may be a literal IP or a host name. Names are kept as written and
/// resolved only when the configuration is applied (Piranha resolved at parse time).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Host {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(*ip),
            Host::Name(_) => None,
        }
    }
    pub fn is_unspecified(&self) -> bool {
        matches!(self, Host::Ip(ip) if ip.is_unspecified())
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => write!(f, "{n}"),
        }
    }
}

/// Parses a host: an IPv4/IPv6 literal, or an RFC 1123 host name.
/// Parses an IPv4 address the way C's `inet_aton` does (Piranha read addresses with
/// it): one to four parts, each decimal, `0x` hex or leading-`0` octal, the last part
/// filling the remaining bytes (`10.1` is 10.0.0.1, `192.168.001.010` is 192.168.1.8).
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4
        || parts
            .iter()
            .any(|p| p.is_empty() || p.starts_with(['+', '-']))
    {
        return None;
    }
    let nums: Vec<u64> = parts
        .iter()
        .map(|p| parse_c_integer(p).and_then(|v| u64::try_from(v).ok()))
        .collect::<Option<_>>()?;
    let (last, head) = nums.split_last()?;
    if head.iter().any(|&b| b > 255) {
        return None;
    }
    let last_bits = 8 * (4 - head.len() as u32);
    if last_bits < 64 && *last >= 1u64 << last_bits {
        return None;
    }
    let mut v: u64 = 0;
    for (i, b) in head.iter().enumerate() {
        v |= b << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from((v | last) as u32))
}

/// The address when `s` is an `inet_aton` form that is not plain dotted-quad notation,
/// so a warning can say how it was read.
pub fn inet_aton_only(s: &str) -> Option<Ipv4Addr> {
    if s.parse::<Ipv4Addr>().is_ok() {
        return None;
    }
    inet_aton(s)
}

fn inet_aton_note(args: &[Token]) -> Option<String> {
    args.iter().filter(|t| t.quote.is_none()).find_map(|t| {
        inet_aton_only(&t.text).map(|ip| {
            let octal = t
                .text
                .split('.')
                .any(|p| p.len() > 1 && p.starts_with('0') && !p.starts_with("0x"));
            format!(
                "`{}` is read as {ip}, as Piranha's inet_aton reads it{}",
                t.text,
                if octal {
                    " (a leading 0 means octal)"
                } else {
                    ""
                }
            )
        })
    })
}

/// A text that is neither an IP address nor a valid DNS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host name or ip address: `{0}`")]
pub struct InvalidHost(pub String);

pub fn parse_host(s: &str) -> Result<Host, InvalidHost> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if let Some(ip) = inet_aton(s) {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let bad = || InvalidHost(s.to_string());
    if s.is_empty() || s.len() > 253 || s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    for label in s.trim_end_matches('.').split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(Host::Name(s.to_string()))
}

impl Value for Host {
    const EXPECTED: &'static str = "an IP address or host name";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let t = one(args, Self::EXPECTED)?;
        parse_host(&t.text).map_err(|m| ValueError::new(0, m.to_string()))
    }
    fn render(&self) -> String {
        self.to_string()
    }
    fn note(args: &[Token]) -> Option<String> {
        inet_aton_note(args)
    }
}

impl Value for IpAddr {
    const EXPECTED: &'static str = "an IP address";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let t = one(args, Self::EXPECTED)?;
        t.text
            .parse()
            .ok()
            .or_else(|| inet_aton(&t.text).map(IpAddr::V4))
            .ok_or_else(|| ValueError::new(0, format!("invalid ip address: `{}`", t.text)))
    }
    fn render(&self) -> String {
        self.to_string()
    }
    fn note(args: &[Token]) -> Option<String> {
        inet_aton_note(args)
    }
}

/// A network mask as a prefix length. Written as a dotted IPv4 mask (Piranha),
/// `/N` or `N`; rendered dotted when it fits IPv4, as a number otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Netmask(pub u8);

impl Netmask {
    pub fn prefix(self) -> u8 {
        self.0
    }
    pub fn to_ipv4(self) -> Option<Ipv4Addr> {
        (self.0 <= 32).then(|| {
            Ipv4Addr::from(if self.0 == 0 {
                0
            } else {
                u32::MAX << (32 - self.0)
            })
        })
    }
}

impl Value for Netmask {
    const EXPECTED: &'static str = "a netmask (255.255.255.0, or a prefix length such as 24)";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let t = one(args, Self::EXPECTED)?;
        let s = t.text.trim_start_matches('/');
        let dotted = s.contains('.').then(|| inet_aton(s)).flatten();
        if let Some(m) = dotted {
            let bits = u32::from(m);
            let prefix = bits.leading_ones();
            if bits.checked_shl(prefix).unwrap_or(0) != 0 {
                return Err(ValueError::new(
                    0,
                    format!("Bad subnet mask specified: `{}` is not contiguous", t.text),
                ));
            }
            return Ok(Netmask(prefix as u8));
        }
        match s.parse::<u8>() {
            Ok(p) if p <= 128 => Ok(Netmask(p)),
            _ => Err(ValueError::new(
                0,
                format!(
                    "Bad subnet mask specified: `{}` (expected e.g. 255.255.255.0 or 24)",
                    t.text
                ),
            )),
        }
    }
    fn render(&self) -> String {
        match self.to_ipv4() {
            Some(m) => m.to_string(),
            None => self.0.to_string(),
        }
    }
    /// Only dotted masks go through `inet_aton`; a bare number is a prefix length.
    fn note(args: &[Token]) -> Option<String> {
        inet_aton_note(args).filter(|_| args.iter().any(|t| t.text.contains('.')))
    }
}

/// A port: a number, or a service name (`http`) looked up when applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PortSpec {
    Number(u16),
    Service(String),
}

impl PortSpec {
    /// The port as compared for duplicates: its number when known, else its name.
    pub fn canonical(&self) -> String {
        self.number()
            .map_or_else(|| self.to_string(), |n| n.to_string())
    }

    /// The port number, from the built-in service table for names.
    pub fn number(&self) -> Option<u16> {
        match self {
            PortSpec::Number(n) => Some(*n),
            PortSpec::Service(s) => services::lookup(s),
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Number(n) => write!(f, "{n}"),
            PortSpec::Service(s) => write!(f, "{s}"),
        }
    }
}

impl Value for PortSpec {
    const EXPECTED: &'static str = "a port number or service name";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let t = one(args, Self::EXPECTED)?;
        let s = t.text.as_str();
        if s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
            let v = parse_c_integer(s)
                .ok_or_else(|| ValueError::new(0, format!("integer expected, found `{s}`")))?;
            return u16::try_from(v)
                .map(PortSpec::Number)
                .map_err(|_| ValueError::new(0, format!("port out of range: {v} (0..=65535)")));
        }
        if s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            Ok(PortSpec::Service(s.to_string()))
        } else {
            Err(ValueError::new(
                0,
                format!("port number or service name expected, found `{s}`"),
            ))
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

/// A device name such as `eth0` or the Piranha alias form `eth0:1`.
fn valid_word(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['"', '\'', '#', '[', ']'])
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '{' && c != '}')
}

/// `IP DEVICE` (virtual `address`, `nat_router`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddrDev {
    pub addr: Host,
    /// Interface, possibly in Piranha's alias form `eth0:1` (becomes an address label).
    pub device: String,
}

impl AddrDev {
    /// The interface without the `:alias` suffix.
    pub fn base_device(&self) -> &str {
        self.device.split(':').next().unwrap_or(&self.device)
    }
}

/// Why a device name is unusable: Linux interface names have at most 15 bytes (the
/// Piranha alias form `eth0:1` included) and no blanks.
fn device_problem(d: &str) -> Option<&'static str> {
    (!valid_word(d) || d.len() > 15).then_some(
        "the device must be an interface name such as eth0 or eth0:1 (at most 15 characters)",
    )
}

impl Value for AddrDev {
    fn unwritable(&self) -> Option<&'static str> {
        device_problem(&self.device)
    }
    fn note(args: &[Token]) -> Option<String> {
        inet_aton_note(&args[..args.len().min(1)])
    }
    const EXPECTED: &'static str = "an address and a device, e.g. `192.168.1.100 eth0:1`";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        match args {
            [] => Err(ValueError::new(
                0,
                format!("missing arguments: expected {}", Self::EXPECTED),
            )),
            [_] => Err(ValueError::new(
                0,
                format!(
                    "missing arguments: the device is required ({})",
                    Self::EXPECTED
                ),
            )),
            [a, d] => {
                let addr = parse_host(&a.text).map_err(|m| ValueError::new(0, m.to_string()))?;
                if let Some(why) = device_problem(&d.text) {
                    return Err(ValueError::new(
                        1,
                        format!("invalid device name `{}`: {why}", d.text),
                    ));
                }
                Ok(AddrDev {
                    addr,
                    device: d.text.clone(),
                })
            }
            [_, _, extra, ..] => Err(ValueError::new(
                2,
                format!(
                    "unexpected arguments: `{}` (expected {})",
                    extra.text,
                    Self::EXPECTED
                ),
            )),
        }
    }
    fn render(&self) -> String {
        format!("{} {}", self.addr, self.device)
    }
}

/// A single unquoted word: an interface, a path, a level name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Word(pub String);

impl Value for Word {
    const EXPECTED: &'static str = "a single word";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let t = one(args, Self::EXPECTED)?;
        if t.quote.is_none() && !valid_word(&t.text) {
            return Err(ValueError::new(0, format!("invalid argument `{}`", t.text)));
        }
        if t.text.is_empty() || t.text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValueError::new(
                0,
                format!(
                    "invalid argument `{}`: a single word without blanks expected",
                    t.text
                ),
            ));
        }
        Ok(Word(t.text.clone()))
    }
    /// Bare only when `parse` takes it bare (not starting with `[`, `#` or a quote).
    fn render(&self) -> String {
        written_form(&self.0, true, valid_word(&self.0)).unwrap_or_else(|| self.0.clone())
    }
    fn unwritable(&self) -> Option<&'static str> {
        if self.0.is_empty() || self.0.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("must be a single word without blanks")
        } else if written_form(&self.0, true, valid_word(&self.0)).is_none() {
            Some("cannot be quoted so that it reads back unchanged")
        } else {
            None
        }
    }
}

/// A string taken verbatim (commands, paths, regexes). Rendered in double quotes, or
/// single quotes when it contains a double quote (see [`written_form`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Text(pub String);

/// How a verbatim string is written so that the lexer reads back exactly `s`: the
/// first of the candidate forms (bare, double-quoted, single-quoted) that does. A
/// string with both quote characters may still be written, e.g. bare (`a'b"c`) or with
/// its double quotes escaped as it was read (`"say \"hi\" it's"`). `None` when no form
/// reads back, e.g. with a line break.
pub(crate) fn written_form(s: &str, bare_first: bool, bare_allowed: bool) -> Option<String> {
    if s.contains(['\n', '\r']) {
        return None;
    }
    let bare = (bare_allowed && !s.is_empty()).then(|| s.to_string());
    let quoted = [format!("\"{s}\""), format!("'{s}'")];
    let candidates: Vec<String> = if bare_first {
        bare.into_iter().chain(quoted).collect()
    } else {
        quoted.into_iter().chain(bare).collect()
    };
    candidates.into_iter().find(|c| {
        let quote = c.chars().next().filter(|q| *q == '"' || *q == '\'');
        matches!(
            super::lexer::lex_line(&format!("x = {c}")),
            Ok(super::lexer::LineKind::Statement { args, comment: None, .. })
                if args.len() == 1 && args[0].text == s && args[0].quote == quote
        )
    })
}

fn quote_plain(s: &str) -> String {
    written_form(s, false, true).unwrap_or_else(|| format!("\"{s}\""))
}

impl Value for Text {
    const EXPECTED: &'static str = "a string";
    const VERBATIM: bool = true;
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let t = one(args, Self::EXPECTED)?;
        Ok(Text(t.text.clone()))
    }
    fn render(&self) -> String {
        quote_plain(&self.0)
    }
    fn unwritable(&self) -> Option<&'static str> {
        if self.0.chars().any(|c| c.is_control() && c != '\t') {
            Some("contains a line break or control character")
        } else if written_form(&self.0, false, true).is_none() {
            Some("contains both quote characters and cannot be quoted so that it reads back unchanged")
        } else {
            None
        }
    }
}

/// A `send`/`expect` string: nanny's escapes `\\ \r \n \t \' \"` are decoded when
/// read (other backslashes are kept, so regexes such as `1\.[01]` survive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Escaped(pub String);

/// Decodes nanny's escape sequences.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.peek() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('\'') => out.push('\''),
            Some('"') => out.push('"'),
            _ => {
                out.push('\\');
                continue;
            }
        }
        it.next();
    }
    out
}

/// Encodes a decoded string so that [`unescape`] gives it back.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => {
                // A lone backslash stays readable (`1\.[01]`) unless it would be read
                // as the start of an escape (including the escapes written for the
                // next character), or end the string.
                match it.peek() {
                    None | Some('n' | 'r' | 't' | '\\' | '\'' | '"' | '\n' | '\r' | '\t') => {
                        out.push_str("\\\\")
                    }
                    _ => out.push('\\'),
                }
            }
            c => out.push(c),
        }
    }
    out
}

impl Value for Escaped {
    const EXPECTED: &'static str = "a quoted string";
    const VERBATIM: bool = true;
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let t = one(args, Self::EXPECTED)?;
        Ok(Escaped(unescape(&t.text)))
    }
    fn render(&self) -> String {
        format!("\"{}\"", escape(&self.0))
    }
    fn unwritable(&self) -> Option<&'static str> {
        self.0
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            .then_some("contains a control character other than \\n, \\r or \\t")
    }
}

/// `[ a b c ]`, the list form of Piranha's `dirs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct List(pub Vec<String>);

impl Value for List {
    const EXPECTED: &'static str = "a list `[ a b c ]`";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        // Tolerate `[a b]` as well as Piranha's `[ a b ]`.
        let mut words: Vec<String> = Vec::new();
        let mut opened = false;
        let mut closed = false;
        for (i, t) in args.iter().enumerate() {
            if closed {
                return Err(ValueError::new(
                    i,
                    format!("unexpected arguments after `]`: `{}`", t.text),
                ));
            }
            let mut s = t.text.as_str();
            if t.quote.is_none() {
                if i == 0 {
                    s = s.strip_prefix('[').ok_or_else(|| {
                        ValueError::new(
                            0,
                            format!("list expected: `[ a b c ]`, found `{}`", t.text),
                        )
                    })?;
                    opened = true;
                }
                if let Some(rest) = s.strip_suffix(']') {
                    s = rest;
                    closed = true;
                }
            } else if i == 0 {
                return Err(ValueError::new(0, "list expected: `[ a b c ]`"));
            }
            if !s.is_empty() {
                words.push(s.to_string());
            }
        }
        if !opened || !closed {
            return Err(ValueError::new(
                args.len().saturating_sub(1),
                "list expected: `[ a b c ]` (missing `]`)",
            ));
        }
        Ok(List(words))
    }
    fn render(&self) -> String {
        if self.0.is_empty() {
            "[ ]".into()
        } else {
            format!("[ {} ]", self.0.join(" "))
        }
    }
    fn unwritable(&self) -> Option<&'static str> {
        self.0
            .iter()
            .any(|w| {
                w.is_empty()
                    || w.starts_with(['"', '\'', '#', '['])
                    || w.contains(']')
                    || w.chars().any(|c| c.is_whitespace() || c.is_control())
            })
            .then_some("list items must be single words without blanks, quotes or brackets")
    }
}

/// Elements written one per list entry, quoted when they hold blanks (the lists of
/// `vrrp` blocks and `check_url`).
pub fn render_list<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "[ ]".into();
    }
    let words: Vec<String> = items
        .iter()
        .map(|i| {
            let s = i.to_string();
            if s.contains(' ') {
                format!("\"{s}\"")
            } else {
                s
            }
        })
        .collect();
    format!("[ {} ]", words.join(" "))
}

/// A list whose elements are parsed by `each`; an error names the element.
pub fn parse_list<T>(
    args: &[Token],
    each: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ValueError> {
    let List(words) = List::parse(args)?;
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            each(w).map_err(|e| ValueError::new(0, format!("element {} (`{w}`): {e}", i + 1)))
        })
        .collect()
}

/// HTTP status codes accepted by an HTTP check: `200`, `200-299`, `200,301-302`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl StatusSet {
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= code && code <= hi)
    }
}

impl Value for StatusSet {
    const EXPECTED: &'static str = "HTTP status codes, e.g. 200 or 200-299,301";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let t = one(args, Self::EXPECTED)?;
        let bad = || {
            ValueError::new(
                0,
                format!(
                    "HTTP status codes expected (e.g. 200 or 200-299,301), found `{}`",
                    t.text
                ),
            )
        };
        let code = |s: &str| -> Result<u16, ValueError> {
            match s.parse::<u16>() {
                Ok(c) if (100..=599).contains(&c) => Ok(c),
                _ => Err(bad()),
            }
        };
        let mut out = Vec::new();
        for part in t.text.split(',') {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (code(a)?, code(b)?),
                None => {
                    let c = code(part)?;
                    (c, c)
                }
            };
            if lo > hi {
                return Err(bad());
            }
            out.push((lo, hi));
        }
        Ok(StatusSet(out))
    }
    fn render(&self) -> String {
        self.0
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Defines a keyword enum: variants, their spellings (first is canonical), and
/// extra accepted aliases.
macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident, $expected:literal { $($(#[$vm:meta])* $var:ident => [$canon:literal $(, $alias:literal)*]),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* $var),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $canon),* }
            }
            pub fn from_word(s: &str) -> Option<Self> {
                let l = s.to_ascii_lowercase();
                match l.as_str() { $($canon $(| $alias)* => Some($name::$var),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl Value for $name {
            const EXPECTED: &'static str = $expected;
            fn parse(args: &[Token]) -> Result<Self, ValueError> {
                let t = one(args, Self::EXPECTED)?;
                $name::from_word(&t.text).ok_or_else(|| {
                    ValueError::new(0, format!("invalid argument `{}`: expected {}", t.text, $expected))
                })
            }
            fn render(&self) -> String { self.as_str().to_string() }
        }
    };
}

word_enum!(
    /// Piranha's `service`: LVS load balancing or the legacy failover services.
    ServiceType, "lvs or fos" { Lvs => ["lvs"], Fos => ["fos"] }
);

word_enum!(
    /// IPVS forwarding method (`network`, and per virtual/real server `forwarding`).
    Forwarding, "nat, direct or tunnel" {
        Nat => ["nat", "masq", "masquerading"],
        Direct => ["direct", "dr", "route", "gate", "gatewaying"],
        Tunnel => ["tunnel", "tun", "ipip"],
    }
);

word_enum!(
    Protocol, "tcp, udp or sctp" { Tcp => ["tcp"], Udp => ["udp"], Sctp => ["sctp"] }
);

word_enum!(
    /// Encapsulation of tunnelled real servers (kernel 5.2+ for gue, 5.3+ for gre).
    TunnelType, "ipip, gue or gre" { Ipip => ["ipip"], Gue => ["gue"], Gre => ["gre"] }
);

word_enum!(
    /// Checksum option of GUE/GRE tunnels.
    TunnelCsum, "nocsum, csum or remcsum" { NoCsum => ["nocsum"], Csum => ["csum"], RemCsum => ["remcsum"] }
);

word_enum!(
    /// What a health check does. Unset means Piranha's rule: `send_program` if set,
    /// else send/expect over the service protocol, else a TCP connect.
    CheckKind, "tcp, udp, http, https, program, ping, dns or none" {
        Tcp => ["tcp", "connect"],
        Udp => ["udp"],
        Http => ["http"],
        Https => ["https", "ssl"],
        Program => ["program", "external", "misc"],
        Ping => ["ping", "icmp"],
        Dns => ["dns"],
        None => ["none", "off"],
    }
);

word_enum!(
    /// A VRRP instance's initial state (keepalived's `state`).
    VrrpState, "master or backup" { Master => ["master"], Backup => ["backup"] }
);

word_enum!(
    /// The VRRP version: 2 (RFC 3768, IPv4, whole seconds) or 3 (RFC 5798).
    VrrpVersion, "2 or 3" { V2 => ["2"], V3 => ["3"] }
);

word_enum!(
    /// VRRPv2 authentication: none, or PASS (a clear-text password in every advert,
    /// which protects against nothing but a neighbour's mistake).
    VrrpAuth, "none or pass" { None => ["none"], Pass => ["pass"] }
);

/// The IPVS schedulers the kernel ships.
pub const KERNEL_SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf",
];

/// A scheduler name. Any word parses; `config::validate` refuses names the kernel
/// does not ship, so a typo is reported with its location rather than as a parse error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scheduler(pub String);

impl Scheduler {
    pub fn is_known(&self) -> bool {
        KERNEL_SCHEDULERS.contains(&self.0.as_str())
    }
}

impl Value for Scheduler {
    const EXPECTED: &'static str =
        "a scheduler name (rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf)";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let w = Word::parse(args)?;
        Ok(Scheduler(w.0.to_ascii_lowercase()))
    }
    fn render(&self) -> String {
        self.0.clone()
    }
}

/// Piranha's `load_monitor`: where nanny reads a real server's load from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LoadMonitor {
    None,
    /// `rsh_command RIP uptime`.
    Uptime,
    Rup,
    Ruptime,
    /// Any other command, called with the real server's address.
    Command(String),
}

impl Value for LoadMonitor {
    const EXPECTED: &'static str = "none, uptime, rup, ruptime or a command";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let t = one(args, Self::EXPECTED)?;
        Ok(match (t.quote, t.text.as_str()) {
            (None, "none") => LoadMonitor::None,
            (None, "uptime") => LoadMonitor::Uptime,
            (None, "rup") => LoadMonitor::Rup,
            (None, "ruptime") => LoadMonitor::Ruptime,
            (_, "") => {
                return Err(ValueError::new(
                    0,
                    "invalid argument: empty load_monitor command",
                ))
            }
            (_, s) => LoadMonitor::Command(s.to_string()),
        })
    }
    fn unwritable(&self) -> Option<&'static str> {
        match self {
            LoadMonitor::Command(c) if c.is_empty() => Some("the command is empty"),
            LoadMonitor::Command(c) => Text(c.clone()).unwritable(),
            _ => None,
        }
    }
    fn render(&self) -> String {
        match self {
            LoadMonitor::None => "none".into(),
            LoadMonitor::Uptime => "uptime".into(),
            LoadMonitor::Rup => "rup".into(),
            LoadMonitor::Ruptime => "ruptime".into(),
            // The reserved words must be quoted to stay commands.
            LoadMonitor::Command(c) => {
                let reserved = matches!(c.as_str(), "none" | "uptime" | "rup" | "ruptime");
                written_form(c, true, !reserved).unwrap_or_else(|| format!("\"{c}\""))
            }
        }
    }
}

/// An MD5 digest written as keepalived's genhash prints it (`check_digest`): 32 hex
/// digits, either case.
pub fn parse_digest(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(words: &[&str]) -> Vec<Token> {
        words
            .iter()
            .enumerate()
            .map(|(i, w)| Token::bare(*w, i * 4 + 1))
            .collect()
    }

    fn p<T: Value>(s: &str) -> Result<T, ValueError> {
        T::parse(&toks(&s.split_whitespace().collect::<Vec<_>>()))
    }

    #[test]
    fn inet_aton_forms_as_piranha_read_them() {
        let a = |s: &str| inet_aton(s).map(|ip| ip.to_string());
        assert_eq!(a("192.168.001.010").as_deref(), Some("192.168.1.8"));
        assert_eq!(a("10.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(a("10.1.2").as_deref(), Some("10.1.0.2"));
        assert_eq!(a("0x7f.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(a("3232235777").as_deref(), Some("192.168.1.1"));
        assert_eq!(a("255.255.255.000").as_deref(), Some("255.255.255.0"));
        for bad in [
            "256.1.1.1",
            "1.2.3.4.5",
            "1..2",
            "",
            "1.2.3.256",
            "1.2.65536",
            "08.1.1.1",
            "-1.2.3.4",
            "a.b.c.d",
        ] {
            assert_eq!(a(bad), None, "{bad}");
        }
        assert_eq!(inet_aton_only("10.0.0.1"), None);
        assert!(p::<Host>("192.168.001.010").is_ok());
        assert_eq!(p::<Netmask>("255.255.255.000").unwrap(), Netmask(24));
        assert!(Host::note(&toks(&["010.1.1.1"]))
            .unwrap()
            .contains("read as 8.1.1.1"));
        assert_eq!(Host::note(&toks(&["10.1.1.1"])), None);
    }

    #[test]
    fn c_integers() {
        assert_eq!(parse_c_integer("80"), Some(80));
        assert_eq!(parse_c_integer("0x50"), Some(80));
        assert_eq!(parse_c_integer("0120"), Some(80));
        assert_eq!(parse_c_integer("0"), Some(0));
        assert_eq!(parse_c_integer("-3"), Some(-3));
        assert_eq!(parse_c_integer("080"), None, "8 is not an octal digit");
        assert_eq!(parse_c_integer("80x"), None);
        assert_eq!(parse_c_integer(""), None);
        assert_eq!(parse_c_integer("0x"), None);
    }

    #[test]
    fn integers_check_range_and_junk() {
        assert_eq!(p::<u32>("0x10").unwrap(), 16);
        assert!(p::<u32>("-1").unwrap_err().message.contains("out of range"));
        assert!(p::<u32>("ten")
            .unwrap_err()
            .message
            .contains("integer expected"));
        assert!(p::<u32>("1 2")
            .unwrap_err()
            .message
            .contains("unexpected arguments"));
        assert!(p::<u32>("")
            .unwrap_err()
            .message
            .contains("missing arguments"));
    }

    #[test]
    fn booleans() {
        assert!(p::<bool>("1").unwrap());
        assert!(!p::<bool>("0").unwrap());
        assert!(p::<bool>("2")
            .unwrap_err()
            .message
            .contains("boolean expected"));
    }

    #[test]
    fn seconds_with_fractions() {
        assert_eq!(p::<Secs>("6").unwrap(), Secs(6000));
        assert_eq!(p::<Secs>("0.2").unwrap(), Secs(200));
        assert_eq!(p::<Secs>(".25").unwrap(), Secs(250));
        assert_eq!(p::<Secs>("1.500").unwrap(), Secs(1500));
        assert_eq!(p::<Secs>("0x10").unwrap(), Secs(16000));
        assert!(p::<Secs>("0.0001").is_err());
        assert!(p::<Secs>("1.").is_err());
        assert!(p::<Secs>("-1").is_err());
        assert!(p::<Secs>("18446744073709551.615")
            .unwrap_err()
            .message
            .contains("out of range"));
        assert_eq!(p::<Secs>("2592000").unwrap(), Secs::MAX);
        assert!(p::<Secs>("2592000.001").is_err());
        assert_eq!(Secs(200).render(), "0.2");
        assert_eq!(Secs(1050).render(), "1.05");
        assert_eq!(Secs(18000).render(), "18");
    }

    #[test]
    fn hosts() {
        assert_eq!(
            p::<Host>("10.0.0.1").unwrap(),
            Host::Ip("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            p::<Host>("2001:db8::1").unwrap(),
            Host::Ip("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            p::<Host>("lb1.example.com").unwrap(),
            Host::Name("lb1.example.com".into())
        );
        assert!(p::<Host>("10.0.0.300").is_err());
        assert!(p::<Host>("bad_host!").is_err());
    }

    #[test]
    fn netmasks() {
        assert_eq!(p::<Netmask>("255.255.255.0").unwrap(), Netmask(24));
        assert_eq!(p::<Netmask>("0.0.0.0").unwrap(), Netmask(0));
        assert_eq!(p::<Netmask>("64").unwrap(), Netmask(64));
        assert_eq!(p::<Netmask>("/23").unwrap(), Netmask(23));
        assert!(p::<Netmask>("255.0.255.0")
            .unwrap_err()
            .message
            .contains("Bad subnet mask"));
        assert!(p::<Netmask>("129").is_err());
        assert_eq!(Netmask(23).render(), "255.255.254.0");
        assert_eq!(Netmask(64).render(), "64");
    }

    #[test]
    fn ports() {
        assert_eq!(p::<PortSpec>("80").unwrap(), PortSpec::Number(80));
        assert_eq!(
            p::<PortSpec>("http").unwrap(),
            PortSpec::Service("http".into())
        );
        assert_eq!(p::<PortSpec>("http").unwrap().number(), Some(80));
        assert!(p::<PortSpec>("080").is_err());
        assert!(p::<PortSpec>("70000").is_err());
    }

    #[test]
    fn escapes_follow_nanny() {
        assert_eq!(
            unescape(r"GET / HTTP/1.0\r\n\r\n"),
            "GET / HTTP/1.0\r\n\r\n"
        );
        assert_eq!(unescape(r"HTTP/1\.[01] 200"), r"HTTP/1\.[01] 200");
        assert_eq!(unescape(r#"a\\b\'c\"d\te"#), "a\\b'c\"d\te");
        assert_eq!(unescape(r"end\"), r"end\");
        for s in [
            "GET /\r\n",
            r"1\.[01]",
            "a\\nb",
            "x\\",
            "\"q\"",
            "tab\there",
            "\\\\",
            "\\\n",
            "\\\"",
            "\\\t",
        ] {
            assert_eq!(unescape(&escape(s)), s, "{s:?}");
        }
        assert_eq!(escape(r"HTTP/1\.[01] 200"), r"HTTP/1\.[01] 200");
    }

    #[test]
    fn verbatim_strings_are_written_so_that_they_read_back() {
        // Found by fuzzing: a bare token holding both quote characters.
        for (s, bare_first) in [
            ("0'\"status\":\\s*\"ok\"'", false),
            ("a'b\"c", true),
            (r#"say \"hi\" it's"#, false),
            ("C:\\", false),
            ("plain", true),
            ("two words", true),
            ("", false),
        ] {
            let w = written_form(s, bare_first, true).unwrap_or_else(|| panic!("{s:?}"));
            let toks = crate::config::value_tokens(&w).unwrap();
            assert_eq!(Text::parse(&toks).unwrap().0, s, "{s:?} written as {w}");
        }
        assert_eq!(Text("plain".into()).render(), "\"plain\"");
        assert_eq!(Word("eth0:1".into()).render(), "eth0:1");
        // Found by fuzzing the keepalived import: `virtualhost [hop.example.com`.
        for w in ["[hop.example.com", "#x", "a]b", "'q"] {
            let text = Word(w.into()).render();
            let toks = crate::config::value_tokens(&text).unwrap();
            assert_eq!(Word::parse(&toks).unwrap().0, w, "{w} written as {text}");
        }
        assert_eq!(LoadMonitor::Command("uptime".into()).render(), "\"uptime\"");
        assert!(written_form("a\nb", false, true).is_none());
        assert!(Text("'\" x".into()).unwritable().is_some());
    }

    #[test]
    fn lists_and_statuses() {
        assert_eq!(
            p::<List>("[ a b ]").unwrap(),
            List(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            p::<List>("[a b]").unwrap(),
            List(vec!["a".into(), "b".into()])
        );
        assert_eq!(p::<List>("[ ]").unwrap(), List(vec![]));
        assert!(p::<List>("a b").is_err());
        assert!(p::<List>("[ a b").is_err());
        assert_eq!(
            p::<StatusSet>("200-299,301").unwrap(),
            StatusSet(vec![(200, 299), (301, 301)])
        );
        assert!(p::<StatusSet>("299-200").is_err());
        assert!(p::<StatusSet>("99").is_err());
    }

    #[test]
    fn enums_accept_aliases_and_render_canonically() {
        assert_eq!(p::<Forwarding>("direct").unwrap(), Forwarding::Direct);
        assert_eq!(p::<Forwarding>("DR").unwrap(), Forwarding::Direct);
        assert_eq!(Forwarding::Direct.render(), "direct");
        assert!(p::<Forwarding>("fnat").is_err());
        assert_eq!(p::<Scheduler>("WLC").unwrap(), Scheduler("wlc".into()));
        assert!(!Scheduler("twos".into()).is_known());
    }
}

//! The values of a `vrrp NAME { … }` block's keywords that are not plain words or
//! numbers: keepalived's `virtual_ipaddress` lines, tracked interfaces and scripts
//! with their weights, unicast peers. Lists are written `[ a b "c d" ]`: an element
//! holding blanks (an address with options) is quoted, so each element reads as the
//! line keepalived would have in its block.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::lexer::Token;
use super::value::{parse_list, render_list, Value, ValueError};

/// `scope` of a virtual address, as `ip address add … scope` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AddrScope {
    Global,
    Site,
    Link,
    Host,
}

impl AddrScope {
    pub fn as_str(self) -> &'static str {
        match self {
            AddrScope::Global => "global",
            AddrScope::Site => "site",
            AddrScope::Link => "link",
            AddrScope::Host => "host",
        }
    }

    /// The kernel's `rtm_scope` value (RT_SCOPE_*).
    pub fn rt_scope(self) -> u8 {
        match self {
            AddrScope::Global => 0,
            AddrScope::Site => 200,
            AddrScope::Link => 253,
            AddrScope::Host => 254,
        }
    }

    fn from_word(s: &str) -> Option<AddrScope> {
        match s {
            "global" | "universe" => Some(AddrScope::Global),
            "site" => Some(AddrScope::Site),
            "link" => Some(AddrScope::Link),
            "host" => Some(AddrScope::Host),
            _ => None,
        }
    }
}

/// One virtual address: `IP[/PREFIX] [dev DEV] [label LABEL] [scope SCOPE] [brd IP]`,
/// keepalived's `virtual_ipaddress` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vip {
    pub addr: IpAddr,
    /// Unset: /32 or /128 (keepalived's default).
    pub prefix: Option<u8>,
    /// Unset: the instance's `interface`.
    pub dev: Option<String>,
    pub label: Option<String>,
    pub scope: Option<AddrScope>,
    /// IPv4 broadcast address.
    pub brd: Option<Ipv4Addr>,
}

impl Vip {
    pub fn new(addr: IpAddr) -> Vip {
        Vip {
            addr,
            prefix: None,
            dev: None,
            label: None,
            scope: None,
            brd: None,
        }
    }

    /// The prefix length in force: the one given, or the whole address.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
            .unwrap_or(if self.addr.is_ipv4() { 32 } else { 128 })
    }

    /// Reads one element; the error says which part is wrong.
    pub fn parse_text(s: &str) -> Result<Vip, String> {
        let mut words = s.split_whitespace();
        let first = words.next().ok_or("an address expected")?;
        let (a, p) = match first.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (first, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => None,
            Some(p) => Some(
                p.parse::<u8>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| format!("`/{p}`: a prefix length of 0 to {max} expected"))?,
            ),
        };
        let mut v = Vip::new(addr);
        v.prefix = prefix;
        while let Some(option) = words.next() {
            let value = words
                .next()
                .ok_or_else(|| format!("`{option}` needs a value"))?;
            let dup = |set: bool| {
                if set {
                    Err(format!("`{option}` given twice"))
                } else {
                    Ok(())
                }
            };
            match option {
                "dev" => {
                    dup(v.dev.is_some())?;
                    v.dev = Some(value.to_string());
                }
                "label" => {
                    dup(v.label.is_some())?;
                    v.label = Some(value.to_string());
                }
                "scope" => {
                    dup(v.scope.is_some())?;
                    v.scope = Some(AddrScope::from_word(value).ok_or_else(|| {
                        format!("scope `{value}`: global, site, link or host expected")
                    })?);
                }
                "brd" | "broadcast" => {
                    dup(v.brd.is_some())?;
                    if !addr.is_ipv4() {
                        return Err("`brd` is for IPv4 addresses only".into());
                    }
                    v.brd = Some(
                        value
                            .parse()
                            .map_err(|_| format!("brd `{value}` is not an IPv4 address"))?,
                    );
                }
                other => {
                    return Err(format!(
                        "`{other}`: dev, label, scope or brd expected (keepalived's other options are not supported)"
                    ))
                }
            }
        }
        Ok(v)
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if let Some(p) = self.prefix {
            write!(f, "/{p}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if let Some(l) = &self.label {
            write!(f, " label {l}")?;
        }
        if let Some(s) = self.scope {
            write!(f, " scope {}", s.as_str())?;
        }
        if let Some(b) = self.brd {
            write!(f, " brd {b}")?;
        }
        Ok(())
    }
}

/// One tracked interface or script: `NAME [weight N [reverse]]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Track {
    pub name: String,
    /// Unset: the script's own weight (scripts) or 0 (interfaces): failure means
    /// FAULT. Otherwise −253 to 253, added to the priority as keepalived does.
    pub weight: Option<i32>,
    /// keepalived's `reverse`: the weight applies the other way round.
    pub reverse: bool,
}

impl Track {
    pub fn parse_text(s: &str) -> Result<Track, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let (name, rest) = words.split_first().ok_or("a name expected")?;
        let mut t = Track {
            name: name.to_string(),
            weight: None,
            reverse: false,
        };
        match rest {
            [] => {}
            ["weight", w, tail @ ..] => {
                let n: i32 = w
                    .parse()
                    .ok()
                    .filter(|n: &i32| (-253..=253).contains(n))
                    .ok_or_else(|| format!("weight `{w}`: an integer from -253 to 253 expected"))?;
                t.weight = Some(n);
                match tail {
                    [] => {}
                    ["reverse"] => t.reverse = true,
                    other => {
                        return Err(format!(
                            "`{}`: only `reverse` may follow the weight",
                            other.join(" ")
                        ))
                    }
                }
            }
            other => {
                return Err(format!(
                    "`{}`: `weight N` expected after the name",
                    other.join(" ")
                ))
            }
        }
        Ok(t)
    }
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(w) = self.weight {
            write!(f, " weight {w}")?;
            if self.reverse {
                f.write_str(" reverse")?;
            }
        }
        Ok(())
    }
}

/// keepalived's `virtual_ipaddress` (or `_excluded`) block as a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct VipList(pub Vec<Vip>);

impl Value for VipList {
    const EXPECTED: &'static str =
        "a list of addresses, e.g. `[ 192.0.2.10/24 \"192.0.2.11/24 dev eth1 label eth1:1\" ]`";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        parse_list(args, Vip::parse_text).map(VipList)
    }
    fn render(&self) -> String {
        render_list(&self.0)
    }
    fn unwritable(&self) -> Option<&'static str> {
        let bad = |s: &Option<String>| {
            s.as_ref().is_some_and(|s| {
                s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '"' || c == ']')
            })
        };
        self.0
            .iter()
            .any(|v| bad(&v.dev) || bad(&v.label))
            .then_some("a device or label must be a single word without quotes or `]`")
    }
}

/// `track_interface` / `track_script` as a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TrackList(pub Vec<Track>);

impl Value for TrackList {
    const EXPECTED: &'static str = "a list of names, e.g. `[ eth0 \"eth1 weight -20\" ]`";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        parse_list(args, Track::parse_text).map(TrackList)
    }
    fn render(&self) -> String {
        render_list(&self.0)
    }
    fn unwritable(&self) -> Option<&'static str> {
        self.0
            .iter()
            .any(|t| {
                t.name.is_empty()
                    || t.name.starts_with(['[', '"', '\''])
                    || t.name
                        .contains(|c: char| c.is_whitespace() || c == '"' || c == ']')
            })
            .then_some("a tracked name must be a single word without quotes or `]`")
    }
}

/// A list of IP addresses (`unicast_peer`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct IpList(pub Vec<IpAddr>);

impl Value for IpList {
    const EXPECTED: &'static str = "a list of IP addresses, e.g. `[ 10.0.0.2 10.0.0.3 ]`";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        parse_list(args, |w| {
            w.parse::<IpAddr>()
                .map_err(|_| "an IP address expected".to_string())
        })
        .map(IpList)
    }
    fn render(&self) -> String {
        render_list(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::value_tokens;

    fn p<T: Value>(s: &str) -> Result<T, ValueError> {
        T::parse(&value_tokens(s)?)
    }

    #[test]
    fn addresses_with_options_read_and_write_back() {
        let l: VipList =
            p(r#"[ 192.0.2.10/24 "192.0.2.11/24 dev eth1 label eth1:1 scope global brd 192.0.2.255" fe80::10/64 ]"#)
                .unwrap();
        assert_eq!(l.0.len(), 3);
        assert_eq!(l.0[1].dev.as_deref(), Some("eth1"));
        assert_eq!(l.0[1].label.as_deref(), Some("eth1:1"));
        assert_eq!(l.0[1].scope, Some(AddrScope::Global));
        assert_eq!(l.0[1].brd, Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(l.0[2].prefix_len(), 64);
        assert_eq!(Vip::new("10.0.0.1".parse().unwrap()).prefix_len(), 32);
        let text = l.render();
        assert_eq!(
            text,
            r#"[ 192.0.2.10/24 "192.0.2.11/24 dev eth1 label eth1:1 scope global brd 192.0.2.255" fe80::10/64 ]"#
        );
        assert_eq!(p::<VipList>(&text).unwrap(), l);
    }

    #[test]
    fn bad_addresses_say_which_element_and_why() {
        let e = |s: &str| p::<VipList>(s).unwrap_err().message;
        assert_eq!(
            e("[ 192.0.2.10 nonsense ]"),
            "element 2 (`nonsense`): `nonsense` is not an IP address"
        );
        assert!(e("[ 192.0.2.10/33 ]").contains("0 to 32"));
        assert!(e(r#"[ "192.0.2.10 dev" ]"#).contains("`dev` needs a value"));
        assert!(e(r#"[ "192.0.2.10 dev a dev b" ]"#).contains("given twice"));
        assert!(e(r#"[ "192.0.2.10 scope moon" ]"#).contains("global, site, link or host"));
        assert!(e(r#"[ "fe80::1 brd ff02::1" ]"#).contains("IPv4"));
        assert!(e(r#"[ "192.0.2.10 preferred_lft 0" ]"#).contains("not supported"));
        assert!(e("192.0.2.10").contains("list expected"));
    }

    #[test]
    fn tracked_names_and_weights() {
        let l: TrackList =
            p(r#"[ eth0 "chk_nginx weight -30" "chk_db weight 20 reverse" ]"#).unwrap();
        assert_eq!(l.0[0].weight, None);
        assert_eq!(l.0[1].weight, Some(-30));
        assert!(l.0[2].reverse);
        assert_eq!(p::<TrackList>(&l.render()).unwrap(), l);
        let e = |s: &str| p::<TrackList>(s).unwrap_err().message;
        assert!(e(r#"[ "x weight 254" ]"#).contains("-253 to 253"));
        assert!(e(r#"[ "x weight" ]"#).contains("`weight N` expected"));
        assert!(e(r#"[ "x weight 2 sideways" ]"#).contains("reverse"));
    }

    #[test]
    fn peers() {
        let l: IpList = p("[ 10.0.0.2 fe80::2 ]").unwrap();
        assert_eq!(l.render(), "[ 10.0.0.2 fe80::2 ]");
        assert!(p::<IpList>("[ 10.0.0.2 peer ]")
            .unwrap_err()
            .message
            .contains("element 2"));
    }
}

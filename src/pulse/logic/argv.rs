//! Command lines as the configuration writes them, into argument vectors: split
//! into words without a shell, `%h`/`%p` replaced. Pure; used by the program checks,
//! the load commands, the role commands and the scripts rule, which then decide
//! whether and how the program runs.

use std::net::IpAddr;

/// Why a command line cannot be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A quote (`'` or `"`) opened and never closed; `line` is the whole command line.
    #[error("no closing {quote} in `{line}`")]
    Unclosed { quote: char, line: String },
}

/// Splits a command line into words without a shell: blanks separate words; `'…'`
/// keeps its text verbatim and `"…"` too, except `\"` and `\\`; outside quotes a
/// backslash escapes a blank, a quote or a backslash and is kept otherwise (so that
/// regex arguments such as `1\.[01]` survive, as with Piranha, which split on blanks).
pub fn split_words(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' | '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        None => {
                            return Err(SplitError::Unclosed {
                                quote: c,
                                line: line.to_string(),
                            })
                        }
                        Some(d) if d == c => break,
                        Some('\\') if c == '"' && matches!(chars.peek(), Some('"' | '\\')) => {
                            w.extend(chars.next());
                        }
                        Some(d) => w.push(d),
                    }
                }
            }
            '\\' if matches!(chars.peek(), Some(' ' | '\t' | '\'' | '"' | '\\')) => {
                word.get_or_insert_with(String::new).extend(chars.next());
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// Replaces `%h` with the address and `%p` with the port in every word; with
/// `append_address`, the address is added as a last word when no word held `%h`/`%p`.
pub fn substitute(words: &[String], addr: IpAddr, port: u16, append_address: bool) -> Vec<String> {
    let (h, p) = (addr.to_string(), port.to_string());
    let mut found = false;
    let mut out: Vec<String> = words
        .iter()
        .map(|w| {
            found |= w.contains("%h") || w.contains("%p");
            w.replace("%h", &h).replace("%p", &p)
        })
        .collect();
    if append_address && !found {
        out.push(h);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

    #[test]
    fn command_lines_split_into_words() {
        let w = |s: &str| split_words(s).unwrap();
        assert_eq!(w("/usr/bin/check  %h\t%p"), ["/usr/bin/check", "%h", "%p"]);
        assert_eq!(
            w("check --name 'two words' \"it's\""),
            ["check", "--name", "two words", "it's"]
        );
        assert_eq!(w(r#"a "say \"hi\"" b\ c"#), ["a", "say \"hi\"", "b c"]);
        assert_eq!(w(r"grep 1\.[01] ''"), ["grep", r"1\.[01]", ""]);
        assert_eq!(w("x'y'z"), ["xyz"]);
        assert!(w("  ").is_empty());
        assert_eq!(
            split_words("check 'open").unwrap_err().to_string(),
            "no closing ' in `check 'open`"
        );
        assert_eq!(
            split_words("check \"open").unwrap_err(),
            SplitError::Unclosed {
                quote: '"',
                line: "check \"open".into()
            }
        );
        let words = w("check -H %h --port=%p %h:%p");
        assert_eq!(
            substitute(&words, LO6, 8443, false),
            ["check", "-H", "::1", "--port=8443", "::1:8443"]
        );
        assert_eq!(substitute(&w("load"), LO4, 1, true), ["load", "127.0.0.1"]);
        assert_eq!(
            substitute(&w("load %h"), LO4, 1, true),
            ["load", "127.0.0.1"]
        );
    }
}

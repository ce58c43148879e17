//! Blocking, hand-written HTTP/1.1 (tests/metrics.rs, tests/up.rs and
//! tests/web_limits.rs talk to the real listeners this way): a free loopback port for
//! the service, form encoding, and the answer split into the status, the headers in
//! order and the body as sent (not de-chunked). Included with `#[path]`.

#![allow(dead_code)]

/// A loopback port nothing listens on (for the service a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `s` percent-encoded for a form body or a query string.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Splits `text` (the whole answer) into status (0 when unreadable), headers and body.
pub fn split_response(text: &str) -> (u16, Vec<(String, String)>, &str) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (status, headers, body)
}

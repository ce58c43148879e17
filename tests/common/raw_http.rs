//! The answer of a blocking, hand-written HTTP/1.1 request (tests/metrics.rs and
//! tests/up.rs talk to the real listeners this way): the status, the headers in order
//! and the body as sent (not de-chunked). Included with `#[path]`.

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

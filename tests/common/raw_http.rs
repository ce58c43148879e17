//! Blocking, hand-written HTTP/1.1 (tests/metrics.rs, tests/up.rs and
//! tests/web_limits.rs talk to the real listeners this way): a free loopback port for
//! the service, form encoding, and the answer split into the status, the headers in
//! order and the body as sent (not de-chunked). Included with `#[path]`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

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

/// A very small HTTP/1.1 client with a cookie jar: enough for forms and redirects.
pub struct Client {
    pub port: u16,
    pub cookies: HashMap<String, String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The value of the hidden input `name` in the page.
    pub fn hidden(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no input {name} in:\n{}", self.body))
            + needle.len();
        self.body[start..].split('"').next().unwrap().to_string()
    }
}

impl Client {
    pub fn request(&mut self, method: &str, path: &str, form: &[(&str, &str)]) -> Reply {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
            self.port
        );
        if !cookies.is_empty() {
            req.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
        }
        if method == "POST" {
            req.push_str(&format!(
                "Origin: http://127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                self.port,
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (status, headers, body) = split_response(&text);
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                if value.is_empty() || v.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        // Chunked bodies: the pages are small; de-chunk crudely but correctly.
        let body = if headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
        {
            let mut out = String::new();
            let mut rest = body;
            while let Some((size, after)) = rest.split_once("\r\n") {
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                if n == 0 {
                    break;
                }
                out.push_str(&after[..n.min(after.len())]);
                rest = after.get(n + 2..).unwrap_or("");
            }
            out
        } else {
            body.to_string()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn get(&mut self, path: &str) -> Reply {
        self.request("GET", path, &[])
    }

    /// Logs `user` in through the login form; the page it lands on.
    pub fn login(&mut self, user: &str, password: &str) -> Reply {
        let login = self.get("/login");
        self.post(
            "/login",
            &[
                ("token", &login.hidden("token")),
                ("next", "/control"),
                ("user", user),
                ("password", password),
            ],
        )
    }

    /// POSTs and follows the redirect, like a browser.
    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let r = self.request("POST", path, form);
        match (r.status, r.header("location")) {
            (303, Some(to)) => {
                let to = to.to_string();
                self.get(&to)
            }
            _ => r,
        }
    }
}

/// The text of the page's first flash message.
pub fn flash(r: &Reply) -> String {
    let start = r
        .body
        .find("class=\"flash")
        .unwrap_or_else(|| panic!("no message:\n{}", r.body));
    let rest = &r.body[start..];
    let text = &rest[rest.find('>').unwrap() + 1..rest.find("</p>").unwrap()];
    text.to_string()
}

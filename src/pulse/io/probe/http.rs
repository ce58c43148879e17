//! HTTP and HTTPS: one `GET` through hyper, the status and the start of the body judged;
//! TLS without certificate verification (real servers are addressed by IP and often
//! self-signed), SNI sent when the host is a name.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use super::Stage;

/// Longest HTTP body read for `check_regex`.
const MAX_BODY: usize = 1024 * 1024;
/// Longest HTTP body whose digest is computed (`check_digest`): a longer one fails.
const MAX_DIGEST_BODY: usize = 64 * 1024 * 1024;

pub(super) struct HttpRequest<'a> {
    pub(super) path: &'a str,
    pub(super) host: &'a str,
    pub(super) status: &'a [(u16, u16)],
    pub(super) body: Option<&'a regex::bytes::Regex>,
    pub(super) digest: Option<&'a super::Digest>,
}

/// The MD5 digest in lower-case hex, as keepalived's genhash prints it.
pub fn hex_digest(d: &[u8; 16]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// One `GET` over an established connection (hyper's HTTP/1 client, one request per
/// connection).
pub(super) async fn http_exchange<S>(
    io: S,
    req: HttpRequest<'_>,
    stage: &Stage,
) -> Result<String, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt;
    use hyper::header;

    if req.body.is_none() && req.digest.is_none() {
        return status_exchange(io, req, stage).await;
    }
    stage.set(Stage::RESPONSE);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(Unshut(io)))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
    let request = hyper::Request::get(req.path)
        .header(header::HOST, req.host)
        .header(header::USER_AGENT, "lvs-director-check")
        .header(header::CONNECTION, "close")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| format!("HTTP request: {e}"))?;
    let exchange = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let code = response.status().as_u16();
        if !req.status.iter().any(|&(lo, hi)| lo <= code && code <= hi) {
            return Err(format!("status {code}"));
        }
        if req.body.is_none() && req.digest.is_none() {
            return Ok(format!("status {code}"));
        }
        stage.set(Stage::BODY);
        let mut body = response.into_body();
        // The regex sees the first MiB; the digest needs the whole body.
        let limit = if req.digest.is_some() {
            MAX_DIGEST_BODY
        } else {
            MAX_BODY
        };
        let mut data = Vec::new();
        let mut md5 = <md5::Md5 as md5::Digest>::new();
        let mut total = 0usize;
        while total < limit {
            let Some(frame) = body.frame().await else {
                break;
            };
            let frame = frame.map_err(|e| format!("status {code}, reading the body: {e}"))?;
            if let Ok(chunk) = frame.into_data() {
                total += chunk.len();
                md5::Digest::update(&mut md5, &chunk);
                if data.len() < MAX_BODY {
                    data.extend_from_slice(&chunk);
                }
            }
        }
        data.truncate(MAX_BODY);
        let mut said = format!("status {code}");
        if let Some(d) = req.digest {
            if total >= limit {
                return Err(format!(
                    "status {code}, but the body is longer than {} MiB: no digest",
                    limit >> 20
                ));
            }
            let got: [u8; 16] = md5::Digest::finalize(md5).into();
            match d {
                super::Digest::Expect(want) if got != *want => {
                    return Err(format!(
                        "status {code} but the body's digest is {}, not {}",
                        hex_digest(&got),
                        hex_digest(want)
                    ))
                }
                super::Digest::Expect(_) => said.push_str(", digest matched"),
                super::Digest::Report => said.push_str(&format!(", digest {}", hex_digest(&got))),
            }
        }
        if let Some(regex) = req.body {
            if !regex.is_match(&data) {
                return Err(format!(
                    "{said} but the body did not match check_regex ({} bytes read)",
                    data.len()
                ));
            }
            said.push_str(", body matched check_regex");
        }
        Ok(said)
    };
    // The connection must be driven while the exchange waits. Driven here rather than
    // spawned so that a timeout drops both: nothing outlives the check.
    tokio::pin!(conn, exchange);
    tokio::select! {
        biased;
        r = &mut exchange => r,
        c = &mut conn => match c {
            // Closed after a complete response (`Connection: close`): finish reading.
            Ok(()) => exchange.await,
            Err(e) => Err(format!("HTTP: {e}")),
        },
    }
}

/// Longest response head a status-only check reads.
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in a response head (hyper's limit too).
const MAX_HEADERS: usize = 100;

/// A check that judges the status alone (no `check_regex`, no digest: the common
/// case): the same request as hyper would send, written at once, and the response head
/// parsed with httparse, without hyper's connection machinery, which cost more CPU than
/// the rest of the check at thousands of checks a second. Informational (1xx) heads
/// are skipped, as hyper skips them.
async fn status_exchange<S>(
    mut io: S,
    req: HttpRequest<'_>,
    stage: &Stage,
) -> Result<String, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    stage.set(Stage::RESPONSE);
    let request = format!(
        "GET {} HTTP/1.1\r\nhost: {}\r\nuser-agent: lvs-director-check\r\nconnection: close\r\n\r\n",
        req.path, req.host
    );
    io.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("HTTP: sending the request: {}", super::io_detail(&e)))?;
    let mut head = Vec::with_capacity(1024);
    // Where the response head being parsed starts (after any 1xx ones).
    let mut start = 0;
    loop {
        if head.len() - start >= MAX_HEAD {
            return Err(format!(
                "HTTP: the response head is longer than {} KiB",
                MAX_HEAD >> 10
            ));
        }
        head.reserve(1024);
        let n = io
            .read_buf(&mut head)
            .await
            .map_err(|e| format!("HTTP: reading the response: {}", super::io_detail(&e)))?;
        if n == 0 {
            return Err("HTTP: connection closed before a complete response head".into());
        }
        loop {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut fields);
            let len = match response.parse(&head[start..]) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => break,
                Err(e) => return Err(format!("HTTP: invalid response head: {e}")),
            };
            let code = response.code.unwrap_or_default();
            if (100..200).contains(&code) && code != 101 {
                start += len;
                continue;
            }
            if !req.status.iter().any(|&(lo, hi)| lo <= code && code <= hi) {
                return Err(format!("status {code}"));
            }
            return Ok(format!("status {code}"));
        }
    }
}

/// The connection as hyper sees it, minus the half-close hyper sends once it has read
/// a `Connection: close` response: the check drops the socket itself, closed with a
/// reset as a TCP check's is, which saves a system call and a FIN exchange per check
/// (and a TLS close_notify: the session ends with the connection).
struct Unshut<S>(S);

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Unshut<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Unshut<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The TLS server name: the `Host` header without its port when that is a DNS name
/// (sent as SNI), else the address (rustls sends no SNI for addresses).
pub(super) fn server_name(
    host: &str,
    addr: IpAddr,
) -> tokio_rustls::rustls::pki_types::ServerName<'static> {
    use tokio_rustls::rustls::pki_types::ServerName;
    let name = match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    match ServerName::try_from(name.to_string()) {
        Ok(n @ ServerName::DnsName(_)) => n,
        _ => ServerName::IpAddress(addr.into()),
    }
}

/// One TLS client configuration for every check (built once: 10,000 checks a second
/// must not each build one). Its session cache lets repeated checks resume.
pub(super) fn tls_connector() -> Result<&'static tokio_rustls::TlsConnector, String> {
    static CONNECTOR: OnceLock<Result<tokio_rustls::TlsConnector, String>> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            use tokio_rustls::rustls::{self, crypto::ring};
            let provider = Arc::new(ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS configuration: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Accepts any certificate, name and date: a health check asks whether the server
/// answers, not who it is (real servers are addressed by IP and often self-signed).
/// Handshake signatures are still verified, so the session itself is sound TLS.
#[derive(Debug)]
struct AnyCertificate(Arc<tokio_rustls::rustls::crypto::CryptoProvider>);

impl tokio_rustls::rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[tokio_rustls::rustls::pki_types::CertificateDer<'_>],
        _server_name: &tokio_rustls::rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: tokio_rustls::rustls::pki_types::UnixTime,
    ) -> Result<tokio_rustls::rustls::client::danger::ServerCertVerified, tokio_rustls::rustls::Error>
    {
        Ok(tokio_rustls::rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<tokio_rustls::rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use super::super::testing::*;
    use super::*;
    use crate::config::model::CheckSettings;
    use crate::config::value::{CheckKind, Protocol, Text, Word};
    use crate::pulse::io::probe::{build_regex, HttpUrl, Outcome, Probe, ProbeKind};

    #[derive(Debug, Default)]
    struct Seen {
        requests: Vec<String>,
        sni: Vec<Option<String>>,
    }

    /// A small HTTP/1.1 server: `/ok` 200 with a body, `/chunked` 200 chunked,
    /// `/fail` 503, `/big` 200 with a 3 MiB body whose marker is past the first MiB,
    /// `/hang` headers then nothing; records each request head.
    async fn serve_http<S>(mut s: S, seen: Arc<Mutex<Seen>>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut head = String::new();
        let mut reader = BufReader::new(&mut s);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let target = head.split(' ').nth(1).unwrap_or("");
        let path = target.split('?').next().unwrap_or("").to_string();
        seen.lock().unwrap().requests.push(head);
        let response: Vec<u8> = match path.as_str() {
            "/ok" | "/" => b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\nstatus: all systems".to_vec(),
            "/chunked" => {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec()
            }
            "/fail" => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy".to_vec(),
            "/big" => {
                let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 3 << 20).into_bytes();
                let mut body = vec![b'.'; 3 << 20];
                body[(2 << 20)..(2 << 20) + 6].copy_from_slice(b"MARKER");
                r.extend(body);
                r
            }
            "/hang" => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n").await;
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        };
        let _ = s.write_all(&response).await;
        let _ = s.shutdown().await;
    }

    async fn http_server(addr: IpAddr) -> (u16, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let l = TcpListener::bind((addr, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let s2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve_http(s, s2.clone()));
            }
        });
        (port, seen)
    }

    fn http(
        tls: bool,
        path: &str,
        host: &str,
        status: &[(u16, u16)],
        body: Option<&str>,
    ) -> ProbeKind {
        ProbeKind::Http {
            tls,
            urls: vec![HttpUrl {
                path: path.into(),
                host: host.into(),
                status: status.to_vec(),
                body: body.map(|b| build_regex(b).unwrap()),
                digest: None,
            }],
        }
    }

    /// keepalived's several `url` blocks: every page in turn, each with its own
    /// status, regex and digest; the first that fails decides and is named, and a page
    /// that hangs has the whole timeout to itself without eating the others'.
    #[tokio::test]
    async fn several_pages_must_all_pass() {
        let (port, seen) = http_server(LO4).await;
        let host = format!("127.0.0.1:{port}");
        let page = |path: &str, status: (u16, u16), regex: Option<&str>| HttpUrl {
            path: path.into(),
            host: host.clone(),
            status: vec![status],
            body: regex.map(|r| build_regex(r).unwrap()),
            digest: None,
        };
        let run = |urls: Vec<HttpUrl>, ms: u64| {
            let p = probe(ProbeKind::Http { tls: false, urls }, LO4, port, ms);
            async move { p.run().await }
        };
        let o = run(
            vec![
                page("/ok", (200, 200), Some("systems")),
                page("/fail", (503, 503), None),
                page("/chunked", (200, 299), Some("hello world")),
            ],
            2000,
        )
        .await;
        assert_ok(&o);
        assert_eq!(
            o.detail,
            "/ok: status 200, body matched check_regex; /fail: status 503; /chunked: status 200, body matched check_regex"
        );
        let before = seen.lock().unwrap().requests.len();
        let o = run(
            vec![
                page("/ok", (200, 200), None),
                page("/missing", (200, 299), None),
                page("/chunked", (200, 299), None),
            ],
            2000,
        )
        .await;
        assert_fail(&o, "/missing: status 404");
        assert_eq!(
            seen.lock().unwrap().requests.len() - before,
            2,
            "the pages after the failed one are not asked"
        );
        let o = run(
            vec![
                page("/ok", (200, 200), None),
                page("/hang", (200, 200), Some("x")),
            ],
            300,
        )
        .await;
        assert_fail(&o, "/hang: timed out after 0.3 s reading the HTTP body");
    }

    /// keepalived's `digest`: the MD5 of the whole body, as `genhash` prints it (here
    /// as md5sum(1) prints it), over a plain, a chunked and a 3 MiB body.
    #[tokio::test]
    async fn the_body_digest_is_checked_whole() {
        let (port, _) = http_server(LO4).await;
        let host = format!("127.0.0.1:{port}");
        let ok = [(200, 299)];
        let run = |path: &'static str, digest: &str, regex: Option<&str>| {
            let mut k = http(false, path, &host, &ok, regex);
            if let ProbeKind::Http { urls, .. } = &mut k {
                urls[0].digest = Some(crate::pulse::io::probe::Digest::Expect(
                    crate::pulse::io::probe::parse_digest(digest).unwrap(),
                ));
            }
            async move { probe(k, LO4, port, 2000).run().await }
        };
        let o = run("/ok", "0ee5dbfcba889ec228d56f564a880d56", None).await;
        assert_ok(&o);
        assert_eq!(o.detail, "status 200, digest matched");
        let o = run(
            "/chunked",
            "5EB63BBBE01EEED093CB22BB8F5ACDC3",
            Some("world"),
        )
        .await;
        assert_ok(&o);
        assert_eq!(
            o.detail,
            "status 200, digest matched, body matched check_regex"
        );
        assert_fail(
            &run("/ok", "00000000000000000000000000000000", None).await,
            "the body's digest is 0ee5dbfcba889ec228d56f564a880d56, not 00000000000000000000000000000000",
        );
        // The whole 3 MiB is hashed, not only the first MiB the regex sees.
        let mut big = vec![b'.'; 3 << 20];
        big[(2 << 20)..(2 << 20) + 6].copy_from_slice(b"MARKER");
        let want: [u8; 16] = <md5::Md5 as md5::Digest>::digest(&big).into();
        assert_ok(&run("/big", &hex_digest(&want), None).await);
    }

    #[tokio::test]
    async fn http_status_set_and_body_regex() {
        let (port, seen) = http_server(LO4).await;
        let host = format!("127.0.0.1:{port}");
        let ok = [(200, 299)];
        let run = |k| async move { probe(k, LO4, port, 2000).run().await };
        let o = run(http(false, "/ok", &host, &ok, None)).await;
        assert_ok(&o);
        assert_eq!(o.detail, "status 200");
        assert_fail(
            &run(http(false, "/fail", &host, &ok, None)).await,
            "status 503",
        );
        assert_fail(
            &run(http(false, "/nope", &host, &ok, None)).await,
            "status 404",
        );
        // A status set that accepts 503.
        assert_ok(&run(http(false, "/fail", &host, &[(200, 200), (503, 503)], None)).await);
        // Body regexes, over a plain and a chunked body.
        assert_ok(&run(http(false, "/ok", &host, &ok, Some("all sys"))).await);
        assert_fail(
            &run(http(false, "/ok", &host, &ok, Some("^down"))).await,
            "body did not match check_regex",
        );
        assert_ok(&run(http(false, "/chunked", &host, &ok, Some("hello world"))).await);
        // Only the first MiB of the body is read.
        let o = run(http(false, "/big", &host, &ok, Some("MARKER"))).await;
        assert_fail(&o, "(1048576 bytes read)");
        let head = seen.lock().unwrap().requests[0].clone();
        assert!(head.starts_with("GET /ok HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("host: {host}\r\n")), "{head}");
        assert!(head.contains("connection: close\r\n"), "{head}");
    }

    #[tokio::test]
    async fn http_over_ipv6_from_settings_sends_a_bracketed_host() {
        if !loopbacks().contains(&LO6) {
            return;
        }
        let (port, seen) = http_server(LO6).await;
        let check = CheckSettings {
            check: Some(CheckKind::Http),
            check_path: Some(Text("/ok?full=1".into())),
            ..CheckSettings::default()
        };
        let p = Probe::from_settings(&check, Protocol::Tcp, LO6, port)
            .unwrap()
            .unwrap();
        assert_ok(&p.run().await);
        let head = seen.lock().unwrap().requests[0].clone();
        assert!(head.starts_with("GET /ok?full=1 HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("host: [::1]:{port}\r\n")), "{head}");
    }

    /// A status-only check reads the response head itself: split across reads, after
    /// a 100 Continue, in pieces; a head that is not HTTP, too long, or cut short
    /// fails and says which; the request is the one hyper sends for the other checks.
    #[tokio::test]
    async fn a_status_only_check_parses_the_head_itself() {
        async fn answer(raw: Vec<Vec<u8>>) -> (Outcome, String) {
            let l = TcpListener::bind((LO4, 0)).await.unwrap();
            let port = l.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (mut s, _) = l.accept().await.unwrap();
                let mut reader = BufReader::new(&mut s);
                let mut head = String::new();
                while reader.read_line(&mut head).await.unwrap() > 2 && !head.ends_with("\r\n\r\n")
                {
                }
                for piece in raw {
                    let _ = s.write_all(&piece).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                head
            });
            let o = probe(
                http(false, "/health?x=1", "web.example", &[(200, 299)], None),
                LO4,
                port,
                2000,
            )
            .run()
            .await;
            (o, server.await.unwrap())
        }
        let (o, request) = answer(vec![
            b"HTTP/1.1 20".to_vec(),
            b"4 No Content\r\nServer: x\r\n\r\n".to_vec(),
        ])
        .await;
        assert_eq!(o.detail, "status 204");
        assert_eq!(
            request,
            "GET /health?x=1 HTTP/1.1\r\nhost: web.example\r\nuser-agent: lvs-director-check\r\nconnection: close\r\n\r\n"
        );
        let (o, _) = answer(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n".to_vec(),
        ])
        .await;
        assert_eq!(o.detail, "status 200");
        let (o, _) = answer(vec![
            b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
            b"HTTP/1.0 503 Busy\r\n\r\n".to_vec(),
        ])
        .await;
        assert_fail(&o, "status 503");
        let (o, _) = answer(vec![b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()]).await;
        assert_fail(&o, "HTTP: invalid response head");
        let (o, _) = answer(vec![b"HTTP/1.1 200 OK\r\nServer: x\r\n".to_vec()]).await;
        assert_fail(
            &o,
            "HTTP: connection closed before a complete response head",
        );
        let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
        long.extend(b"X-Padding: ".iter().chain(&[b'a'; 70 * 1024]));
        let (o, _) = answer(vec![long]).await;
        assert_fail(&o, "HTTP: the response head is longer than 64 KiB");
    }

    #[tokio::test]
    async fn http_timeouts_while_waiting_and_while_reading() {
        let mute = mute_server(LO4).await;
        let o = probe(http(false, "/", "h", &[(200, 299)], None), LO4, mute, 400)
            .run()
            .await;
        assert_timed_out(&o, 400, "waiting for the HTTP response");
        let (port, _) = http_server(LO4).await;
        let o = probe(
            http(false, "/hang", "h", &[(200, 299)], Some("x")),
            LO4,
            port,
            400,
        )
        .run()
        .await;
        assert_timed_out(&o, 400, "reading the HTTP body");
        assert_fail(
            &probe(
                http(false, "/", "h", &[(200, 299)], None),
                LO4,
                closed_tcp_port(LO4).await,
                400,
            )
            .run()
            .await,
            "connection refused",
        );
    }

    /// A TLS server with a fresh self-signed certificate for `checks.example`,
    /// recording the SNI of each handshake.
    async fn https_server() -> (u16, Arc<Mutex<Seen>>) {
        use tokio_rustls::rustls::{self, pki_types};
        let cert = rcgen::generate_simple_self_signed(vec!["checks.example".to_string()]).unwrap();
        let key = pki_types::PrivateKeyDer::Pkcs8(pki_types::PrivatePkcs8KeyDer::from(
            cert.signing_key.serialize_der(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let l = TcpListener::bind((LO4, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let s2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let (acceptor, seen) = (acceptor.clone(), s2.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(s).await else {
                        return;
                    };
                    let sni = tls.get_ref().1.server_name().map(str::to_string);
                    seen.lock().unwrap().sni.push(sni);
                    serve_http(tls, seen).await;
                });
            }
        });
        (port, seen)
    }

    #[tokio::test]
    async fn https_accepts_a_self_signed_certificate_and_sends_sni_for_names() {
        let (port, seen) = https_server().await;
        let check = |host: Option<&str>| CheckSettings {
            check: Some(CheckKind::Https),
            check_path: Some(Text("/ok".into())),
            check_host: host.map(|h| Word(h.into())),
            check_regex: Some(Text("systems".into())),
            ..CheckSettings::default()
        };
        let p = Probe::from_settings(&check(Some("checks.example")), Protocol::Tcp, LO4, port)
            .unwrap()
            .unwrap();
        let o = p.run().await;
        assert_ok(&o);
        assert_eq!(o.detail, "status 200, body matched check_regex");
        // Addressed by IP: no SNI (and no certificate name check either).
        let p = Probe::from_settings(&check(None), Protocol::Tcp, LO4, port)
            .unwrap()
            .unwrap();
        assert_ok(&p.run().await);
        // A name with a port in the Host header: SNI without the port.
        let p = Probe::from_settings(&check(Some("other.example:8443")), Protocol::Tcp, LO4, port)
            .unwrap()
            .unwrap();
        assert_ok(&p.run().await);
        {
            let seen = seen.lock().unwrap();
            assert_eq!(
                seen.sni,
                [
                    Some("checks.example".to_string()),
                    None,
                    Some("other.example".to_string())
                ]
            );
            assert!(seen.requests[0].contains("host: checks.example\r\n"));
            assert!(seen.requests[1].contains(&format!("host: 127.0.0.1:{port}\r\n")));
        }
        // Plain HTTP against TLS, and TLS against plain HTTP, fail.
        let o = probe(
            http(true, "/ok", "h", &[(200, 299)], None),
            LO4,
            http_server(LO4).await.0,
            2000,
        )
        .run()
        .await;
        assert_fail(&o, "TLS handshake");
        let o = probe(
            http(false, "/ok", "h", &[(200, 299)], None),
            LO4,
            port,
            2000,
        )
        .run()
        .await;
        assert!(!o.ok, "{o:?}");
    }
}

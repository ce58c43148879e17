//! Optional TLS for the admin UI (rustls): the server configuration from PEM files.
//! Handshakes run in each connection's task ([`super::server`]), so a slow or silent
//! client never holds up the others.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;

/// The client's address, whatever the listener (what the audit log and the login
/// limiter use).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Reads a certificate chain and its private key (PEM), with errors naming the file.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: cannot read the certificate: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{}: cannot read a PEM private key: {e}", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| {
        format!(
            "{}: the key does not fit the certificate: {e}",
            cert.display()
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use tokio::net::{TcpListener, TcpStream};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, pki_types::ServerName, RootCertStore};

    use super::*;
    use crate::storage::{SessionPolicy, Store};
    use crate::web::{self, AppState, Settings};

    fn pem_files(
        dir: &Path,
    ) -> (
        std::path::PathBuf,
        std::path::PathBuf,
        CertificateDer<'static>,
    ) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::File::create(&c)
            .unwrap()
            .write_all(cert.cert.pem().as_bytes())
            .unwrap();
        std::fs::File::create(&k)
            .unwrap()
            .write_all(cert.signing_key.serialize_pem().as_bytes())
            .unwrap();
        (c, k, cert.cert.der().clone())
    }

    async fn get(addr: SocketAddr, roots: RootCertStore, path: &str) -> String {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        tls.read_to_string(&mut out).await.unwrap_or_default();
        out
    }

    #[tokio::test]
    async fn the_ui_is_served_over_tls_with_secure_cookies() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, der) = pem_files(dir.path());
        let config = load(&cert, &key).unwrap();
        let store = Store::open_in_memory().await.unwrap();
        let state = AppState::new(
            store,
            Settings {
                lvs_cf: dir.path().join("lvs.cf"),
                control_socket: dir.path().join("pulse.sock"),
                scripts_dir: crate::pulse::io::scripts::DEFAULT_SCRIPTS_DIR.into(),
                secure_cookies: true,
                sessions: SessionPolicy::default(),
                sync_port: crate::cluster::wire::DEFAULT_PORT,
            },
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(web::serve(listener, Some(config), state, async {
            let _ = stopped.await;
        }));
        // A client that connects and says nothing holds up nobody.
        let _silent = TcpStream::connect(addr).await.unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(der).unwrap();
        let reply = get(addr, roots, "/login").await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        let cookie = reply
            .lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with("set-cookie: lvsd_login=")
            })
            .unwrap_or_else(|| panic!("no login cookie: {reply}"));
        for attr in ["HttpOnly", "SameSite=Strict", "Secure"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        assert!(
            reply
                .to_ascii_lowercase()
                .contains("strict-transport-security: max-age=31536000"),
            "{reply}"
        );
        // A plain-HTTP request to the TLS port gets no page.
        let mut plain = TcpStream::connect(addr).await.unwrap();
        plain
            .write_all(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf)).await;
        assert!(!String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"));
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, _) = pem_files(dir.path());
        let missing = dir.path().join("nope.pem");
        let e = load(&missing, &key).unwrap_err();
        assert!(e.contains("nope.pem") && e.contains("certificate"), "{e}");
        let e = load(&cert, &missing).unwrap_err();
        assert!(e.contains("nope.pem") && e.contains("private key"), "{e}");
        // A key that is not the certificate's.
        let other = tempfile::tempdir().unwrap();
        let (_, other_key, _) = pem_files(other.path());
        let e = load(&cert, &other_key).unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
        // A key file given as the certificate.
        let e = load(&key, &key).unwrap_err();
        assert!(e.contains("key.pem"), "{e}");
    }
}

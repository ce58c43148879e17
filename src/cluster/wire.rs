//! The sync channel between two directors: one TCP connection per exchange, secured
//! by the Noise protocol (`Noise_NNpsk0_25519_ChaChaPoly_SHA256`, through the `snow`
//! crate) with a pre-shared key derived from the heartbeat key.
//!
//! - **Authenticated**: a handshake only completes between holders of the key; a
//!   stranger's first message fails at once ([`WireError::Handshake`]).
//! - **Encrypted**, with keys fresh for every connection (ephemeral X25519 on both
//!   sides): a recorded exchange reveals nothing even to a later holder of the key.
//! - **Replay-proof**: the responder's ephemeral key is new for each connection, so a
//!   recorded client's messages replayed to it do not decrypt
//!   ([`WireError::Forged`]); nothing is acted on before a request decrypts.
//! - **Size-bounded**: a message is at most [`MAX_MESSAGE`] bytes; its length comes
//!   first and a longer one is refused before it is read.
//!
//! Framing: each Noise message is sent as a 2-byte length and its bytes. A message of
//! the protocol (JSON) is split over as many Noise messages as it needs, the first
//! beginning with its total length (4 bytes).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::lineage::Head;

const PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
/// Binds the handshake to this protocol and version: a peer speaking another fails it.
const PROLOGUE: &[u8] = b"lvs-director configuration sync 1";
const NOISE_MAX: usize = 65535;
const TAG: usize = 16;
/// The largest protocol message: far above the `lvs.cf` of 10,000 real servers.
pub const MAX_MESSAGE: usize = 32 << 20;
/// The TCP port the directors sync on unless `sync_port` says otherwise.
pub const DEFAULT_PORT: u16 = 3637;
/// How long a handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The Noise pre-shared key of a heartbeat key: a key of its own (HMAC-SHA256 under a
/// label), so the heartbeat's MACs and the sync channel never share one.
#[derive(Clone)]
pub struct Psk([u8; 32]);

impl Psk {
    pub fn derive(heartbeat_key: &[u8]) -> Psk {
        const LABEL: &[u8] = b"lvs-director configuration sync psk";
        // HMAC takes a key of any length: the fallback is never taken.
        Hmac::<Sha256>::new_from_slice(heartbeat_key).map_or_else(
            |_| Psk(Sha256::digest([LABEL, heartbeat_key].concat()).into()),
            |mut mac| {
                mac.update(LABEL);
                Psk(mac.finalize().into_bytes().into())
            },
        )
    }
}

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Psk(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the handshake does not authenticate: a different sync key, or not an lvs-director")]
    Handshake,
    #[error("a message does not authenticate: forged, replayed or corrupted")]
    Forged,
    #[error("a message of {0} bytes is over the limit of {MAX_MESSAGE}")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
}

impl WireError {
    /// A message the key did not vouch for: counted as refused.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, WireError::Handshake | WireError::Forged)
    }
}

/// A revision as it travels: the sender's `lvs.cf` (its own per-node settings in it,
/// which the receiver replaces by its own) and where it stands in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    pub serial: u32,
    /// The shared part's digest; the receiver computes it again and refuses a mismatch.
    pub digest: String,
    pub parents: Vec<String>,
    /// What the sender's head descends from (see [`Head::ancestry`]).
    pub ancestry: Vec<String>,
    pub text: String,
    pub applied_by: String,
    pub comment: String,
}

/// What a director asks its peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub enum Request {
    /// What do you run?
    Head,
    /// Send me the configuration you run.
    Fetch,
    /// Take this configuration (sent by an Apply).
    Offer { revision: Box<Shipped> },
    /// Your supervisor's status (for the monitoring page of the pair).
    Status,
}

/// The answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Response {
    Head {
        node: String,
        head: Head,
    },
    Revision {
        revision: Box<Shipped>,
    },
    /// The offer is in force here (or already was); the message says what the
    /// supervisor answered.
    Taken {
        message: String,
    },
    /// Not taken; nothing changed here.
    Refused {
        reason: String,
    },
    /// The supervisor's status, or why it could not be asked.
    Status {
        status: Result<Box<crate::pulse::logic::control::Status>, String>,
    },
}

/// An established channel.
pub struct Channel<S> {
    io: S,
    noise: snow::TransportState,
    buf: Vec<u8>,
}

fn handshake(psk: &Psk, initiator: bool) -> Result<snow::HandshakeState, WireError> {
    let params = PATTERN.parse().map_err(|_| WireError::Handshake)?;
    let b = snow::Builder::new(params)
        .psk(0, &psk.0)
        .and_then(|b| b.prologue(PROLOGUE))
        .map_err(|_| WireError::Handshake)?;
    if initiator {
        b.build_initiator()
    } else {
        b.build_responder()
    }
    .map_err(|_| WireError::Handshake)
}

async fn write_frame<S: AsyncWrite + Unpin>(io: &mut S, frame: &[u8]) -> Result<(), WireError> {
    let len = u16::try_from(frame.len()).map_err(|_| WireError::TooLarge(frame.len()))?;
    let mut out = Vec::with_capacity(frame.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(frame);
    io.write_all(&out).await?;
    Ok(())
}

async fn read_frame<S: AsyncRead + Unpin>(io: &mut S, into: &mut Vec<u8>) -> Result<(), WireError> {
    let mut len = [0u8; 2];
    io.read_exact(&mut len).await?;
    into.resize(u16::from_be_bytes(len) as usize, 0);
    io.read_exact(into).await?;
    Ok(())
}

/// Opens the channel as the director asking.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    psk: &Psk,
) -> Result<Channel<S>, WireError> {
    let mut hs = handshake(psk, true)?;
    let mut buf = vec![0u8; NOISE_MAX];
    let n = hs
        .write_message(&[], &mut buf)
        .map_err(|_| WireError::Handshake)?;
    write_frame(&mut io, &buf[..n]).await?;
    let mut frame = Vec::new();
    read_frame(&mut io, &mut frame).await?;
    hs.read_message(&frame, &mut buf)
        .map_err(|_| WireError::Handshake)?;
    let noise = hs.into_transport_mode().map_err(|_| WireError::Handshake)?;
    Ok(Channel { io, noise, buf })
}

/// Opens the channel as the director asked.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    psk: &Psk,
) -> Result<Channel<S>, WireError> {
    let mut hs = handshake(psk, false)?;
    let mut buf = vec![0u8; NOISE_MAX];
    let mut frame = Vec::new();
    read_frame(&mut io, &mut frame).await?;
    hs.read_message(&frame, &mut buf)
        .map_err(|_| WireError::Handshake)?;
    let n = hs
        .write_message(&[], &mut buf)
        .map_err(|_| WireError::Handshake)?;
    write_frame(&mut io, &buf[..n]).await?;
    let noise = hs.into_transport_mode().map_err(|_| WireError::Handshake)?;
    Ok(Channel { io, noise, buf })
}

impl<S: AsyncRead + AsyncWrite + Unpin> Channel<S> {
    /// Sends one message.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), WireError> {
        let body = serde_json::to_vec(msg).map_err(|e| WireError::Malformed(e.to_string()))?;
        if body.len() > MAX_MESSAGE {
            return Err(WireError::TooLarge(body.len()));
        }
        let mut plain = Vec::with_capacity(body.len() + 4);
        plain.extend_from_slice(&(body.len() as u32).to_be_bytes());
        plain.extend_from_slice(&body);
        for chunk in plain.chunks(NOISE_MAX - TAG) {
            let n = self
                .noise
                .write_message(chunk, &mut self.buf)
                .map_err(|_| WireError::Forged)?;
            let frame = self.buf[..n].to_vec();
            write_frame(&mut self.io, &frame).await?;
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Receives one message.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, WireError> {
        let mut frame = Vec::new();
        let mut plain = Vec::new();
        let mut want: Option<usize> = None;
        loop {
            read_frame(&mut self.io, &mut frame).await?;
            let n = self
                .noise
                .read_message(&frame, &mut self.buf)
                .map_err(|_| WireError::Forged)?;
            plain.extend_from_slice(&self.buf[..n]);
            if want.is_none() && plain.len() >= 4 {
                let total = u32::from_be_bytes([plain[0], plain[1], plain[2], plain[3]]) as usize;
                if total > MAX_MESSAGE {
                    return Err(WireError::TooLarge(total));
                }
                want = Some(total + 4);
            }
            if let Some(w) = want {
                if plain.len() >= w {
                    if plain.len() > w {
                        return Err(WireError::Malformed("trailing bytes".into()));
                    }
                    return serde_json::from_slice(&plain[4..])
                        .map_err(|e| WireError::Malformed(e.to_string()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(size: usize) -> Shipped {
        Shipped {
            serial: 7,
            digest: "d".repeat(32),
            parents: vec!["p".into()],
            ancestry: vec!["d".repeat(32), "p".into()],
            text: "x".repeat(size),
            applied_by: "alice".into(),
            comment: "c".into(),
        }
    }

    #[tokio::test]
    async fn holders_of_the_key_exchange_messages_of_any_size() {
        let psk = Psk::derive(b"0123456789abcdef");
        let (a, b) = tokio::io::duplex(1 << 16);
        let server = {
            let psk = psk.clone();
            tokio::spawn(async move {
                let mut ch = accept(b, &psk).await.unwrap();
                let req: Request = ch.recv().await.unwrap();
                let Request::Offer { revision } = req else {
                    panic!("{req:?}")
                };
                ch.send(&Response::Taken {
                    message: format!("{} bytes", revision.text.len()),
                })
                .await
                .unwrap();
            })
        };
        let mut ch = connect(a, &psk).await.unwrap();
        let big = shipped(3 << 20);
        ch.send(&Request::Offer {
            revision: Box::new(big),
        })
        .await
        .unwrap();
        let r: Response = ch.recv().await.unwrap();
        assert_eq!(
            r,
            Response::Taken {
                message: format!("{} bytes", 3 << 20)
            }
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn another_key_fails_the_handshake() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move {
            accept(b, &Psk::derive(b"the right key 123"))
                .await
                .map(|_| ())
        });
        let client = connect(a, &Psk::derive(b"a wrong key 45678")).await;
        let served = server.await.unwrap();
        assert!(matches!(served, Err(WireError::Handshake)), "{served:?}");
        assert!(client.is_err());
    }

    #[tokio::test]
    async fn a_recorded_request_replayed_does_not_decrypt() {
        use tokio::io::AsyncReadExt;
        let psk = Psk::derive(b"0123456789abcdef");
        // Record what a client sends in one real exchange.
        let (a, b) = tokio::io::duplex(1 << 16);
        let (tap_a, mut tap_b) = tokio::io::duplex(1 << 20);
        let p2 = psk.clone();
        let server = tokio::spawn(async move {
            let mut ch = accept(b, &p2).await.unwrap();
            let _: Request = ch.recv().await.unwrap();
        });
        let recorder = Recorder {
            inner: a,
            copy: tap_a,
        };
        let mut ch = connect(recorder, &psk).await.unwrap();
        ch.send(&Request::Fetch).await.unwrap();
        server.await.unwrap();
        drop(ch);
        let mut recorded = Vec::new();
        tap_b.read_to_end(&mut recorded).await.unwrap();

        // Play it to a fresh server: the handshake's first message is accepted (it
        // carries nothing), the request is not.
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(async move {
            let mut ch = accept(b, &psk).await?;
            ch.recv::<Request>().await
        });
        a.write_all(&recorded).await.unwrap();
        let served = server.await.unwrap();
        assert!(matches!(served, Err(WireError::Forged)), "{served:?}");
    }

    #[tokio::test]
    async fn a_length_over_the_limit_is_refused_before_it_is_read() {
        let psk = Psk::derive(b"0123456789abcdef");
        let (a, b) = tokio::io::duplex(1 << 16);
        let p2 = psk.clone();
        let server = tokio::spawn(async move {
            let mut ch = accept(b, &p2).await.unwrap();
            ch.recv::<Request>().await
        });
        let mut ch = connect(a, &psk).await.unwrap();
        let n = ch
            .noise
            .write_message(&((MAX_MESSAGE + 1) as u32).to_be_bytes(), &mut ch.buf)
            .unwrap();
        let frame = ch.buf[..n].to_vec();
        write_frame(&mut ch.io, &frame).await.unwrap();
        let served = server.await.unwrap();
        assert!(matches!(served, Err(WireError::TooLarge(_))), "{served:?}");
    }

    /// A stream that copies what is written to it.
    struct Recorder<S> {
        inner: S,
        copy: tokio::io::DuplexStream,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Recorder<S> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let this = &mut *self;
            match std::pin::Pin::new(&mut this.inner).poll_write(cx, buf) {
                std::task::Poll::Ready(Ok(n)) => {
                    // The tap is large enough never to be full in this test.
                    let _ = std::pin::Pin::new(&mut this.copy).poll_write(cx, &buf[..n]);
                    std::task::Poll::Ready(Ok(n))
                }
                other => other,
            }
        }
        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }
}

//! The supervisor as the web service sees it: requests over its control socket, and
//! its status cached for a moment so that many browsers polling the monitoring page
//! cost the supervisor one status request a second, not one each.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::pulse::control::{self, Reply, Request, Status};

/// How long a fetched status is served before it is asked for again.
const STATUS_MAX_AGE: Duration = Duration::from_secs(1);
/// How long the web service waits for the supervisor's answer to a status request.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// …and to a reload (it reads, checks and applies the file first).
const ACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What the monitoring page shows about the supervisor.
#[derive(Debug, Clone)]
pub enum LiveStatus {
    Running(Box<Status>),
    /// Why there is no status: the supervisor is not running, not reachable, or
    /// answered something else.
    Unavailable(String),
}

pub struct Live {
    socket: PathBuf,
    cache: Mutex<Option<(Instant, Arc<LiveStatus>)>>,
}

impl Live {
    pub fn new(socket: PathBuf) -> Live {
        Live {
            socket,
            cache: Mutex::new(None),
        }
    }

    /// The supervisor's status, at most [`STATUS_MAX_AGE`] old. Concurrent callers
    /// wait for the one request in flight instead of sending their own.
    pub async fn status(&self) -> Arc<LiveStatus> {
        let mut cache = self.cache.lock().await;
        if let Some((at, s)) = cache.as_ref() {
            if at.elapsed() < STATUS_MAX_AGE {
                return s.clone();
            }
        }
        let fresh = Arc::new(match self.request(Request::Status, STATUS_TIMEOUT).await {
            Ok(Reply {
                ok: true,
                status: Some(s),
                ..
            }) => LiveStatus::Running(s),
            Ok(r) => LiveStatus::Unavailable(
                r.error
                    .unwrap_or_else(|| "the supervisor sent no status".into()),
            ),
            Err(e) => LiveStatus::Unavailable(e),
        });
        *cache = Some((Instant::now(), fresh.clone()));
        fresh
    }

    /// Forgets the cached status (after an action that changes it).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// Sends an action (reload, drain, enable, hand over) and returns the
    /// supervisor's answer, or why it could not be asked.
    pub async fn act(&self, req: Request) -> Result<Reply, String> {
        let r = self.request(req, ACTION_TIMEOUT).await;
        self.invalidate().await;
        r
    }

    /// True when something answers on the control socket.
    pub fn reachable(&self) -> bool {
        std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
    }

    async fn request(&self, req: Request, timeout: Duration) -> Result<Reply, String> {
        let socket = self.socket.clone();
        tokio::task::spawn_blocking(move || control::request(&socket, &req, timeout))
            .await
            .map_err(|e| format!("control request failed: {e}"))?
            .map_err(|e| e.to_string())
    }
}

//! The supervisor as the web service sees it: requests over its control socket, and
//! its status cached for a moment so that many browsers polling the monitoring page
//! cost the supervisor one status request a second, not one each.

use crate::sync::Recover;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::pulse::logic::control::{self, Reply, Request, Status};

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

/// Why the supervisor could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error("control request failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub struct Live {
    socket: PathBuf,
    cache: std::sync::Mutex<Cache>,
    /// Held by the one caller that fetches a new status.
    refresh: Mutex<()>,
}

#[derive(Default)]
struct Cache {
    /// The last status fetched, and when.
    status: Option<(Instant, Arc<LiveStatus>)>,
    /// Counts [`Live::invalidate`]: a fetch begun before one is not kept.
    generation: u64,
}

impl Live {
    pub fn new(socket: PathBuf) -> Live {
        Live {
            socket,
            cache: std::sync::Mutex::new(Cache::default()),
            refresh: Mutex::new(()),
        }
    }

    fn cached(&self, max_age: Option<Duration>) -> Option<Arc<LiveStatus>> {
        let cache = self.cache.locked();
        let (at, s) = cache.status.as_ref()?;
        max_age
            .is_none_or(|max| at.elapsed() < max)
            .then(|| s.clone())
    }

    /// The supervisor's status, at most [`STATUS_MAX_AGE`] old. One caller fetches it
    /// (and waits for it); callers that come meanwhile get the previous status rather
    /// than queue behind the fetch (the status of 10,000 real servers takes tens of
    /// milliseconds to fetch and parse, once a second), or wait for the fetch when
    /// there is none (at start, after [`Live::invalidate`]).
    pub async fn status(&self) -> Arc<LiveStatus> {
        if let Some(s) = self.cached(Some(STATUS_MAX_AGE)) {
            return s;
        }
        let _fetching = match self.refresh.try_lock() {
            Ok(guard) => guard,
            Err(_) => match self.cached(None) {
                Some(previous) => return previous,
                None => self.refresh.lock().await,
            },
        };
        // Fetched by another caller while this one waited.
        if let Some(s) = self.cached(Some(STATUS_MAX_AGE)) {
            return s;
        }
        let generation = self.cache.locked().generation;
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
            Err(e) => LiveStatus::Unavailable(e.to_string()),
        });
        let mut cache = self.cache.locked();
        if cache.generation == generation {
            cache.status = Some((Instant::now(), fresh.clone()));
        }
        fresh
    }

    /// Forgets the cached status (after an action that changes it): the next callers
    /// wait for a status fetched after this.
    pub async fn invalidate(&self) {
        let mut cache = self.cache.locked();
        cache.status = None;
        cache.generation += 1;
    }

    /// Sends an action (reload, drain, enable, hand over) and returns the
    /// supervisor's answer, or why it could not be asked.
    pub async fn act(&self, req: Request) -> Result<Reply, LiveError> {
        let r = self.request(req, ACTION_TIMEOUT).await;
        self.invalidate().await;
        r
    }

    /// True when something answers on the control socket.
    pub fn reachable(&self) -> bool {
        std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
    }

    async fn request(&self, req: Request, timeout: Duration) -> Result<Reply, LiveError> {
        let socket = self.socket.clone();
        Ok(tokio::task::spawn_blocking(move || control::request(&socket, &req, timeout)).await??)
    }
}

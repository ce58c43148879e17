//! `lvs-director web` (the admin UI) and `lvs-director up` (the admin UI and the
//! supervisor in one process, everything under one data folder: a single node or a
//! try-out).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::{Failure, Outcome};
use crate::pulse::supervisor::{self, Options};
use crate::storage::{SessionPolicy, Store};
use crate::web::{self, AppState, Settings, StartSupervisor};

/// Where the web service finds `lvs.cf` unless told otherwise.
pub const DEFAULT_LVS_CF: &str = "/etc/lvs-director/lvs.cf";

/// What `web` is given on the command line.
#[derive(Debug, Clone)]
pub struct WebArgs {
    pub listen: String,
    pub db: PathBuf,
    pub lvs_cf: PathBuf,
    pub control_socket: PathBuf,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::io(format!("cannot start the async runtime: {e}")))
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without handlers the default action (exit) applies, which is also a stop.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Opens the database, the listener and TLS; prints the setup link when there is no
/// user yet. Returns what `serve` needs.
async fn prepare(
    args: &WebArgs,
) -> Result<
    (
        tokio::net::TcpListener,
        Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        AppState,
    ),
    Failure,
> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(web::tls::load(c, k).map_err(Failure::invalid)?),
        (None, None) => None,
        _ => {
            return Err(Failure::invalid(
                "--tls-cert and --tls-key go together: give both, or neither",
            ))
        }
    };
    let addr: SocketAddr = args.listen.parse().map_err(|e| {
        Failure::invalid(format!(
            "--listen {}: not an address and port such as 0.0.0.0:3636 ({e})",
            args.listen
        ))
    })?;
    let store = Store::open(&args.db)
        .await
        .map_err(|e| Failure::io(format!("{}: {e}", args.db.display())))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::io(format!("cannot listen on {addr}: {e}")))?;
    let state = AppState::new(
        store.clone(),
        Settings {
            lvs_cf: args.lvs_cf.clone(),
            control_socket: args.control_socket.clone(),
            secure_cookies: tls.is_some(),
            sessions: SessionPolicy::default(),
        },
    );
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shown = if addr.ip().is_unspecified() {
        format!("{scheme}://<this host>:{}", addr.port())
    } else {
        format!("{scheme}://{addr}")
    };
    let users = store
        .users()
        .list()
        .await
        .map_err(|e| Failure::io(format!("{}: {e}", args.db.display())))?;
    if users.is_empty() {
        let token = state.auth.new_setup_token();
        tracing::warn!(
            "no user yet: create the first administrator at {shown}/setup?token={token} (valid until restart), or with `lvs-director passwd NAME`"
        );
    }
    tracing::info!(
        "admin UI on {shown}/ (database {}, lvs.cf {}, supervisor socket {})",
        args.db.display(),
        args.lvs_cf.display(),
        args.control_socket.display()
    );
    Ok((listener, tls, state))
}

/// Removes expired sessions now and then: they are refused when presented anyway, this
/// only keeps the table small.
fn sweep_sessions(store: Store) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = store.sessions().delete_expired(store.now()).await {
                tracing::warn!("removing expired sessions: {e}");
            }
        }
    });
}

pub fn web(args: WebArgs) -> Outcome {
    runtime()?.block_on(async {
        let (listener, tls, state) = prepare(&args).await?;
        sweep_sessions(state.store.clone());
        web::serve(listener, tls, state.clone(), stop_signal())
            .await
            .map_err(|e| Failure::io(format!("the web server failed: {e}")))?;
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// The supervisor of the all-in-one mode: started when an `lvs.cf` exists, and again
/// by Apply when it is not running.
struct Embedded {
    opts: Options,
    running: Mutex<Option<tokio::task::JoinHandle<Result<(), supervisor::SupervisorError>>>>,
}

impl Embedded {
    /// Starts the supervisor unless it runs; waits until its control socket answers
    /// or it gives up, and says which.
    async fn start(self: &Arc<Self>) -> String {
        let mut running = self.running.lock().await;
        if let Some(h) = running.as_ref() {
            if !h.is_finished() {
                return "The supervisor is running.".into();
            }
        }
        if !self.opts.config.exists() {
            return format!(
                "The supervisor is not started: {} does not exist yet (Apply writes it).",
                self.opts.config.display()
            );
        }
        let opts = self.opts.clone();
        let handle = tokio::spawn(supervisor::run(opts));
        let socket = self.opts.control_socket.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if handle.is_finished() {
                let why = match handle.await {
                    Ok(Ok(())) => "it stopped at once".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                tracing::error!("the supervisor could not start: {why}");
                *running = None;
                return format!("The supervisor could not start: {why}");
            }
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                *running = Some(handle);
                return "The supervisor started with it.".into();
            }
            if tokio::time::Instant::now() > deadline {
                *running = Some(handle);
                return "The supervisor is starting (its control socket does not answer yet)."
                    .into();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the supervisor to finish (it stops on the same signal as the UI).
    async fn wait(&self) {
        if let Some(h) = self.running.lock().await.take() {
            match h.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("supervisor: {e}"),
                Err(e) => tracing::error!("supervisor: {e}"),
            }
        }
    }
}

/// Creates `dir` (0700): it holds the database and the supervisor's state.
fn data_dir(dir: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            Failure::io(format!(
                "{}: cannot create the data folder: {e}",
                dir.display()
            ))
        })
}

pub fn up(listen: String, data: PathBuf) -> Outcome {
    data_dir(&data)?;
    let args = WebArgs {
        listen,
        db: data.join("director.db"),
        lvs_cf: data.join("lvs.cf"),
        control_socket: data.join("pulse.sock"),
        tls_cert: None,
        tls_key: None,
    };
    let embedded = Arc::new(Embedded {
        opts: Options {
            config: args.lvs_cf.clone(),
            control_socket: args.control_socket.clone(),
            state_dir: data.join("state"),
            require_capabilities: false,
        },
        running: Mutex::new(None),
    });
    runtime()?.block_on(async {
        let (listener, tls, state) = prepare(&args).await?;
        let hook = embedded.clone();
        let start: StartSupervisor = Arc::new(move || {
            let hook = hook.clone();
            Box::pin(async move { hook.start().await })
        });
        let state = state.with_supervisor(start);
        sweep_sessions(state.store.clone());
        if args.lvs_cf.exists() {
            let said = embedded.start().await;
            tracing::info!("{said}");
        } else {
            tracing::info!(
                "no {} yet: the supervisor starts at the first Apply",
                args.lvs_cf.display()
            );
        }
        web::serve(listener, tls, state.clone(), stop_signal())
            .await
            .map_err(|e| Failure::io(format!("the web server failed: {e}")))?;
        embedded.wait().await;
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    })
}

//! `lvs-director web` (the admin UI) and `lvs-director up` (the admin UI and the
//! supervisor in one process, everything under one data folder: a single node or a
//! try-out).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::{Failure, Outcome};
use crate::pulse::task::supervisor::{self, Options};
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
    pub metrics: MetricsArgs,
    /// Where commands must be (checked at the forms; the supervisor enforces it).
    pub scripts_dir: PathBuf,
    pub sync_port: u16,
}

/// The scripts directory: the only place commands in lvs.cf may run from as root.
#[derive(Debug, Clone, clap::Args)]
pub struct ScriptsArgs {
    /// Commands in lvs.cf (active_cmd, inactive_cmd, notify_command, send_program,
    /// load_monitor, rsh_command) must name an executable in this folder, which root
    /// owns and only root can change. Give `web` the supervisor's.
    #[arg(long, env = "LVS_DIRECTOR_SCRIPTS_DIR", value_name = "DIR", default_value = crate::pulse::io::scripts::DEFAULT_SCRIPTS_DIR)]
    pub scripts_dir: PathBuf,
}

impl ScriptsArgs {
    /// The folder as an absolute path: it is compared with the commands' own.
    pub fn dir(&self) -> Result<PathBuf, Failure> {
        std::path::absolute(&self.scripts_dir)
            .map_err(|e| Failure::io(format!("--scripts-dir {}: {e}", self.scripts_dir.display())))
    }
}

/// Who may read `/metrics` (Prometheus): with neither option nobody, it is not served.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve /metrics to requests with `Authorization: Bearer TOKEN`, TOKEN being this
    /// file's content (16 printable characters or more); on the main port too, where
    /// it then needs no login.
    #[arg(long, env = "LVS_DIRECTOR_METRICS_TOKEN_FILE", value_name = "PATH")]
    pub metrics_token_file: Option<PathBuf>,
    /// Also serve /metrics, and nothing else, on this address over plain HTTP (e.g.
    /// 127.0.0.1:9636): without a token unless --metrics-token-file is given.
    #[arg(long, env = "LVS_DIRECTOR_METRICS_LISTEN", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
}

/// The web service's runtime. Its descriptor limit is raised first: the connection
/// cap follows it (see `web::server`). Blocking work (file reads) gets a few threads,
/// not tokio's 512: password hashing has threads of its own.
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    let descriptors = crate::descriptors::raise();
    tracing::debug!(descriptors, "descriptor limit");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .map_err(|e| Failure::io(format!("cannot start the async runtime: {e}")))
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed by the call, not at the
/// first poll: a SIGTERM right after READY=1 is then a clean stop too.
fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            // Without handlers the default action (exit) applies, which is also a stop.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        // systemd (Type=notify) shows the unit as stopping; without NOTIFY_SOCKET a no-op.
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
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
        Option<tokio::net::TcpListener>,
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
    let metrics_addr: Option<SocketAddr> = match &args.metrics.metrics_listen {
        None => None,
        Some(a) => Some(a.parse().map_err(|e| {
            Failure::invalid(format!(
                "--metrics-listen {a}: not an address and port such as 127.0.0.1:9636 ({e})"
            ))
        })?),
    };
    let metrics_token = match &args.metrics.metrics_token_file {
        None => None,
        Some(p) => Some(web::metrics::Token::read(p).map_err(|e| Failure::invalid(e.to_string()))?),
    };
    let store = Store::open(&args.db)
        .await
        .map_err(|e| Failure::io(e.opening(&args.db)))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::io(format!("cannot listen on {addr}: {e}")))?;
    let metrics_listener =
        match metrics_addr {
            None => None,
            Some(a) => Some(tokio::net::TcpListener::bind(a).await.map_err(|e| {
                Failure::io(format!("--metrics-listen: cannot listen on {a}: {e}"))
            })?),
        };
    let state = AppState::new(
        store.clone(),
        Settings {
            lvs_cf: args.lvs_cf.clone(),
            control_socket: args.control_socket.clone(),
            scripts_dir: args.scripts_dir.clone(),
            secure_cookies: tls.is_some(),
            sessions: SessionPolicy::default(),
            sync_port: args.sync_port,
        },
    );
    let protected = metrics_token.is_some();
    let state = match metrics_token {
        Some(t) => state.with_metrics_token(t),
        None => state,
    };
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
        .map_err(|e| Failure::io(e.opening(&args.db)))?;
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
    if protected {
        tracing::info!("metrics on {shown}/metrics (bearer token required)");
    }
    if let Some(a) = metrics_addr {
        tracing::info!(
            "metrics on http://{a}/metrics ({})",
            if protected {
                "bearer token required"
            } else {
                "no token: keep this address local"
            }
        );
    }
    Ok((listener, tls, state, metrics_listener))
}

/// Serves the admin UI, and the metrics listener when there is one, until SIGTERM or
/// SIGINT; both then finish the requests in progress.
async fn serve_all(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    state: AppState,
    metrics: Option<tokio::net::TcpListener>,
) -> Result<(), Failure> {
    use futures_util::FutureExt;
    let stop = stop_signal().boxed().shared();
    // The database is open, the port bound, SIGTERM handled: systemd (Type=notify) may
    // start what comes after. Without NOTIFY_SOCKET a no-op.
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let metrics =
        metrics.map(|l| tokio::spawn(web::metrics::serve(l, state.clone(), stop.clone())));
    web::serve(listener, tls, state, stop)
        .await
        .map_err(|e| Failure::io(format!("the web server failed: {e}")))?;
    if let Some(task) = metrics {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Failure::io(format!("the metrics listener failed: {e}"))),
            Err(e) => return Err(Failure::io(format!("the metrics listener failed: {e}"))),
        }
    }
    Ok(())
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
        let (listener, tls, state, metrics) = prepare(&args).await?;
        sweep_sessions(state.store.clone());
        tokio::spawn(state.cluster.clone().run());
        tokio::spawn(web::trends::sample(state.clone()));
        serve_all(listener, tls, state.clone(), metrics).await?;
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// The supervisor of the all-in-one mode: started when an `lvs.cf` exists, and again
/// by Apply when it is not running; stopped after the admin UI.
struct Embedded {
    opts: Options,
    running: Mutex<Option<supervisor::Handle>>,
}

impl Embedded {
    /// Starts the supervisor unless it runs, and says what became of it.
    async fn start(self: &Arc<Self>) -> String {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return "The supervisor is running.".into();
        }
        if !self.opts.config.exists() {
            return format!(
                "The supervisor is not started: {} does not exist yet (Apply writes it).",
                self.opts.config.display()
            );
        }
        match supervisor::start(self.opts.clone()).await {
            Ok(handle) => {
                *running = Some(handle);
                "The supervisor started with it.".into()
            }
            Err(e) => {
                tracing::error!("the supervisor could not start: {e}");
                format!("The supervisor could not start: {e}")
            }
        }
    }

    /// Stops the supervisor, if it runs: the peer is told, the addresses given up.
    async fn stop(&self) {
        if let Some(h) = self.running.lock().await.take() {
            h.stop().await;
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

pub fn up(listen: String, data: PathBuf, metrics: MetricsArgs, scripts_dir: PathBuf) -> Outcome {
    data_dir(&data)?;
    let args = WebArgs {
        listen,
        db: data.join("director.db"),
        lvs_cf: data.join("lvs.cf"),
        control_socket: data.join("pulse.sock"),
        tls_cert: None,
        tls_key: None,
        metrics,
        scripts_dir: scripts_dir.clone(),
        sync_port: crate::cluster::wire::DEFAULT_PORT,
    };
    let embedded = Arc::new(Embedded {
        opts: Options {
            config: args.lvs_cf.clone(),
            control_socket: args.control_socket.clone(),
            state_dir: data.join("state"),
            require_capabilities: false,
            scripts_dir,
            // The admin UI writes lvs.cf from this very process: whoever runs it, a
            // file it wrote is never trusted with arbitrary commands.
            trust_root_config: false,
        },
        running: Mutex::new(None),
    });
    runtime()?.block_on(async {
        let (listener, tls, state, metrics) = prepare(&args).await?;
        let hook = embedded.clone();
        let start: StartSupervisor = Arc::new(move || {
            let hook = hook.clone();
            Box::pin(async move { hook.start().await })
        });
        let state = state.with_supervisor(start);
        sweep_sessions(state.store.clone());
        tokio::spawn(state.cluster.clone().run());
        tokio::spawn(web::trends::sample(state.clone()));
        if args.lvs_cf.exists() {
            let said = embedded.start().await;
            tracing::info!("{said}");
        } else {
            tracing::info!(
                "no {} yet: the supervisor starts at the first Apply",
                args.lvs_cf.display()
            );
        }
        let served = serve_all(listener, tls, state.clone(), metrics).await;
        embedded.stop().await;
        served?;
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    })
}

//! The command line: `check-config`, `import`, `export`, `passwd`, `migrate`, `ipvs`.
//!
//! Thin glue between files, [`crate::config`] and [`crate::storage`]. Exit codes:
//! 0 success, 1 the input is invalid (nothing was changed), 2 usage or I/O error.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub mod apply;
pub mod docs;
pub mod genhash;
pub mod ipvs;
pub mod pulse;
pub mod web;

use crate::config::{self, Config, Diagnostic};
use crate::storage::{Actor, Role, StorageError, Store};

/// Where the database lives unless `--db` or `LVS_DIRECTOR_DB` says otherwise.
pub const DEFAULT_DB: &str = "/var/lib/lvs-director/director.db";

#[derive(Debug, Parser)]
#[command(
    name = "lvs-director",
    version,
    long_version = crate::build_info::long_version(),
    about = "Web-managed high-availability load balancer for Linux Virtual Server (IPVS)"
)]
pub struct Cli {
    /// SQLite database holding the configuration, users and history (created on first use).
    #[arg(long, global = true, env = "LVS_DIRECTOR_DB", default_value = DEFAULT_DB)]
    pub db: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an lvs.cf file: exit 0 when valid (warnings printed), 1 when not.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
        /// Format of FILE; guessed from its contents when omitted. A keepalived.conf
        /// is checked as its import would be, without touching the database.
        #[arg(long, value_enum)]
        from: Option<Format>,
    },
    /// Replace the stored configuration with a file (lvs.cf or keepalived.conf).
    ///
    /// The file is checked first; a file with errors changes nothing.
    Import {
        file: PathBuf,
        /// Format of FILE; guessed from its contents when omitted.
        #[arg(long, value_enum)]
        from: Option<Format>,
    },
    /// Put the stored configuration in force, as the admin UI's Apply does: print the
    /// diff against the file in force, write it atomically with the next serial,
    /// record the revision, have the supervisor reload and offer it to the peers.
    ///
    /// Exit 0 applied (or nothing to apply), 1 refused or invalid, 2 usage or I/O
    /// error. On a terminal it asks first unless --yes; without one --yes is required.
    Apply {
        /// The lvs.cf to write (and the supervisor reads).
        #[arg(long, env = "LVS_DIRECTOR_CONFIG", default_value = web::DEFAULT_LVS_CF)]
        lvs_cf: PathBuf,
        #[arg(long, env = "LVS_DIRECTOR_CONTROL_SOCKET", default_value = crate::pulse::logic::control::DEFAULT_SOCKET)]
        control_socket: PathBuf,
        /// Print the diff and what would be written; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply without asking.
        #[arg(long, short = 'y')]
        yes: bool,
        /// TCP port of configuration sync with the peer directors.
        #[arg(long, env = "LVS_DIRECTOR_SYNC_PORT", default_value_t = crate::cluster::wire::DEFAULT_PORT)]
        sync_port: u16,
    },
    /// Render the stored configuration as lvs.cf.
    Export {
        /// Write to this file atomically instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Write even if the stored configuration has errors.
        #[arg(long)]
        force: bool,
    },
    /// Set a user's password, read from standard input (asked twice on a terminal).
    /// Creates the user if missing.
    Passwd {
        user: String,
        /// Role given to a user created by this command.
        #[arg(long, value_enum, default_value_t = RoleArg::Admin)]
        role: RoleArg,
        /// Check the password instead of setting it: exit 0 when it is USER's, 1 when
        /// not (or no such user). Changes nothing.
        #[arg(long, conflicts_with = "role")]
        check: bool,
    },
    /// Tokens of the automation API (`Authorization: Bearer TOKEN` on /api/v1).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Create the database, or bring its schema up to date, and exit. Every command
    /// that opens the database does this too; the packages run it on install and
    /// upgrade.
    Migrate,
    /// Run the supervisor: heartbeats and failover, floating addresses, health checks
    /// and the IPVS table (needs CAP_NET_ADMIN and CAP_NET_RAW). SIGHUP reloads,
    /// SIGTERM stops cleanly.
    Pulse {
        #[arg(long, env = "LVS_DIRECTOR_CONFIG", default_value = pulse::DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, env = "LVS_DIRECTOR_CONTROL_SOCKET", default_value = crate::pulse::logic::control::DEFAULT_SOCKET)]
        control_socket: PathBuf,
        /// Where the supervisor keeps what it owns in the kernel.
        #[arg(long, env = "LVS_DIRECTOR_STATE_DIR", default_value = ipvs::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Accepted for Piranha's pulse: lvs-director always stays in the foreground
        /// (systemd runs it).
        #[arg(long)]
        foreground: bool,
        #[command(flatten)]
        scripts: web::ScriptsArgs,
    },
    /// The supervisor's state: role, peer, addresses, services, real servers.
    Status {
        /// Print the JSON of the control socket.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "LVS_DIRECTOR_CONTROL_SOCKET", default_value = crate::pulse::logic::control::DEFAULT_SOCKET)]
        control_socket: PathBuf,
    },
    /// Ask the running supervisor to do something.
    Ctl {
        #[command(subcommand)]
        command: CtlCommand,
        #[arg(long, env = "LVS_DIRECTOR_CONTROL_SOCKET", default_value = crate::pulse::logic::control::DEFAULT_SOCKET, global = true)]
        control_socket: PathBuf,
    },
    /// Run the admin UI (port 3636): edit the configuration stored in the database,
    /// Apply it to lvs.cf and reload the supervisor. SIGTERM stops it gracefully.
    Web {
        /// Address and port to listen on.
        #[arg(long, env = "LVS_DIRECTOR_LISTEN", default_value = crate::web::DEFAULT_LISTEN)]
        listen: String,
        /// The lvs.cf that Apply writes (and the supervisor reads).
        #[arg(long, env = "LVS_DIRECTOR_CONFIG", default_value = web::DEFAULT_LVS_CF)]
        lvs_cf: PathBuf,
        #[arg(long, env = "LVS_DIRECTOR_CONTROL_SOCKET", default_value = crate::pulse::logic::control::DEFAULT_SOCKET)]
        control_socket: PathBuf,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        #[command(flatten)]
        metrics: web::MetricsArgs,
        #[command(flatten)]
        scripts: web::ScriptsArgs,
        /// TCP port of configuration sync with the peer directors (the same on all).
        #[arg(long, env = "LVS_DIRECTOR_SYNC_PORT", default_value_t = crate::cluster::wire::DEFAULT_PORT)]
        sync_port: u16,
    },
    /// Run the admin UI and the supervisor in one process, with everything (database,
    /// lvs.cf, control socket, state) under one folder: a single director or a
    /// try-out. Without root or IPVS it still starts and says what is unavailable.
    Up {
        #[arg(long, default_value = crate::web::DEFAULT_LISTEN)]
        listen: String,
        /// The data folder (created if missing).
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        #[command(flatten)]
        metrics: web::MetricsArgs,
        #[command(flatten)]
        scripts: web::ScriptsArgs,
    },
    /// The MD5 of a page's body, for `check_digest` (keepalived's genhash): the request
    /// an HTTP(S) check sends, TLS without certificate verification.
    Genhash {
        /// http://HOST[:PORT]/PATH or https://…
        url: String,
        /// Host header to send instead of the URL's host (as `check_host`).
        #[arg(long)]
        host: Option<String>,
        /// Seconds the whole request may take.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
    },
    /// The kernel's IPVS table: show it, or program it from an lvs.cf.
    Ipvs {
        #[command(subcommand)]
        command: ipvs::IpvsCommand,
    },
    /// Write the manual pages and shell completions generated from this command line
    /// (used to build the packages).
    #[command(hide = true)]
    GenerateDocs {
        /// Folder to write `man/*.1` and `completions/{bash,zsh,fish}/…` into.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it, alone on the last line of the output: the only
    /// time it is shown (the database keeps its hash).
    Create {
        /// A name for the token (letters, digits, - _ . @), unique: lists, the audit
        /// log and `revoke` use it.
        name: String,
        /// What the token may do: admin (everything) or viewer (read only).
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Days until it expires (1 to 3650); without, it never does.
        #[arg(long, value_name = "DAYS")]
        expires: Option<u32>,
    },
    /// List the tokens: name, role, prefix, creation, expiry, last use.
    List,
    /// Revoke a token at once.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Re-read lvs.cf (like SIGHUP, but with the answer: applied or rejected and why).
    Reload,
    /// Weight 0 for a real server: no new connections, the existing ones finish.
    Drain {
        #[arg(value_name = "VIRTUAL")]
        virtual_server: String,
        server: String,
    },
    /// Undo a drain.
    Enable {
        #[arg(value_name = "VIRTUAL")]
        virtual_server: String,
        server: String,
    },
    /// Give the addresses to the peer on purpose (this node then stands aside until
    /// the peer fails).
    HandOver,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Piranha's lvs.cf (with lvs-director's extensions).
    #[value(name = "lvs.cf", alias = "lvscf", alias = "piranha")]
    LvsCf,
    /// keepalived.conf.
    #[value(name = "keepalived", alias = "keepalived.conf")]
    Keepalived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Admin,
    Viewer,
}

/// A failure with its exit code and a message that names what and where.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
    pub(crate) fn io(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    /// Exit 1 when storage refused the input (a duplicate, a weak password, …), 2 when
    /// the database itself failed.
    fn storage(e: &StorageError, message: String) -> Self {
        if e.is_invalid_input() {
            Failure::invalid(message)
        } else {
            Failure::io(message)
        }
    }
}

pub(crate) type Outcome = Result<(), Failure>;

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::CheckConfig { file, from } => check_config(file, *from),
        Command::Ipvs { command } => ipvs::run(command),
        Command::Genhash { url, host, timeout } => genhash::genhash(url, host.as_deref(), *timeout),
        Command::Pulse {
            config,
            control_socket,
            state_dir,
            foreground: _,
            scripts,
        } => scripts.dir().and_then(|dir| {
            pulse::pulse(
                config.clone(),
                control_socket.clone(),
                state_dir.clone(),
                dir,
            )
        }),
        Command::Status {
            json,
            control_socket,
        } => pulse::status(control_socket, *json),
        Command::Web {
            listen,
            lvs_cf,
            control_socket,
            tls_cert,
            tls_key,
            metrics,
            scripts,
            sync_port,
        } => scripts.dir().and_then(|scripts_dir| {
            web::web(web::WebArgs {
                listen: listen.clone(),
                db: cli.db.clone(),
                lvs_cf: lvs_cf.clone(),
                control_socket: control_socket.clone(),
                tls_cert: tls_cert.clone(),
                tls_key: tls_key.clone(),
                metrics: metrics.clone(),
                scripts_dir,
                sync_port: *sync_port,
            })
        }),
        Command::Up {
            listen,
            data,
            metrics,
            scripts,
        } => scripts
            .dir()
            .and_then(|dir| web::up(listen.clone(), data.clone(), metrics.clone(), dir)),
        Command::GenerateDocs { out } => docs::generate(out),
        Command::Ctl {
            command,
            control_socket,
        } => {
            use crate::pulse::logic::control::Request;
            let req = match command {
                CtlCommand::Reload => Request::Reload,
                CtlCommand::HandOver => Request::HandOver,
                CtlCommand::Drain {
                    virtual_server,
                    server,
                } => Request::Drain {
                    virtual_server: virtual_server.clone(),
                    server: server.clone(),
                },
                CtlCommand::Enable {
                    virtual_server,
                    server,
                } => Request::Enable {
                    virtual_server: virtual_server.clone(),
                    server: server.clone(),
                },
            };
            pulse::control(control_socket, req)
        }
        other => {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(Failure::io(format!("cannot start the async runtime: {e}"))),
            };
            rt.block_on(run_with_store(&cli.db, other))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(f),
    }
}

fn fail(f: Failure) -> ExitCode {
    if !f.message.is_empty() {
        eprintln!("lvs-director: {}", f.message);
    }
    ExitCode::from(f.code)
}

async fn run_with_store(db: &Path, command: &Command) -> Outcome {
    let open = || async {
        Store::open(db)
            .await
            .map_err(|e| Failure::io(e.opening(db)))
    };
    match command {
        Command::CheckConfig { .. }
        | Command::Ipvs { .. }
        | Command::Genhash { .. }
        | Command::Pulse { .. }
        | Command::Status { .. }
        | Command::Web { .. }
        | Command::Up { .. }
        | Command::GenerateDocs { .. }
        | Command::Ctl { .. } => {
            unreachable!("handled without a store")
        }
        Command::Import { file, from } => import(&open().await?, file, *from).await,
        // Export never creates a database: a mistyped --db must not turn into an empty
        // lvs.cf written over a live one.
        Command::Export { output, force } => {
            let store = Store::open_existing(db).await.map_err(|e| match e {
                StorageError::Missing { .. } => Failure::io(format!(
                    "{}: no database there (check --db, or import a configuration first)",
                    db.display()
                )),
                e => Failure::io(e.opening(db)),
            })?;
            export(&store, output.as_deref(), *force).await
        }
        Command::Passwd {
            user, check: true, ..
        } => check_password(&open().await?, user).await,
        Command::Passwd { user, role, .. } => passwd(&open().await?, user, *role).await,
        Command::Migrate => migrate(&open().await?, db).await,
        Command::Token { command } => token(&open().await?, command).await,
        Command::Apply {
            lvs_cf,
            control_socket,
            dry_run,
            yes,
            sync_port,
        } => {
            apply::apply(
                &open().await?,
                &apply::ApplyArgs {
                    lvs_cf: lvs_cf.clone(),
                    control_socket: control_socket.clone(),
                    dry_run: *dry_run,
                    yes: *yes,
                    sync_port: *sync_port,
                },
            )
            .await
        }
    }
}

pub(crate) fn read(file: &Path) -> Result<String, Failure> {
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::io(format!("{}: cannot read: {e}", file.display())))?;
    let (text, latin1) = config::decode_text(&bytes);
    if latin1 {
        eprintln!(
            "{}: warning: the file is not UTF-8; it is read as Latin-1",
            file.display()
        );
    }
    Ok(text)
}

/// Parses and validates lvs.cf text; prints every diagnostic; the model if usable.
pub(crate) fn checked_lvs_cf(name: &str, text: &str) -> Result<(Config, usize), Failure> {
    let mut checked = config::check(text);
    let warnings = report(name, &mut checked.diagnostics)?;
    // No error: report() has said so, and a text without errors parsed.
    match checked.config {
        Some(config) => Ok((config, warnings)),
        None => Err(Failure::invalid(format!("{name}: nothing changed"))),
    }
}

/// Prints diagnostics in file order; fails when one is an error.
fn report(name: &str, diags: &mut [Diagnostic]) -> Result<usize, Failure> {
    diags.sort_by_key(|d| (d.pos, d.severity));
    for d in diags.iter() {
        eprintln!("{}", d.display_in(name));
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    if errors > 0 {
        return Err(Failure::invalid(format!(
            "{name}: {errors} error(s); nothing changed"
        )));
    }
    Ok(diags.len())
}

fn check_config(file: &Path, from: Option<Format>) -> Outcome {
    let (config, warnings, label) = load(file, from)?;
    let w = match warnings {
        0 => String::new(),
        1 => "; 1 warning".into(),
        n => format!("; {n} warnings"),
    };
    let as_label = if label == "lvs.cf" {
        String::new()
    } else {
        format!(" as {label}")
    };
    println!(
        "{}: OK{as_label}: {}{w}",
        file.display(),
        config::summary(&config)
    );
    Ok(())
}

/// Reads, converts (keepalived) and validates a file, printing every diagnostic.
/// Returns the model, the number of warnings and the format's name.
fn load(file: &Path, from: Option<Format>) -> Result<(Config, usize, &'static str), Failure> {
    let name = file.display().to_string();
    let text = read(file)?;
    match from.unwrap_or_else(|| guess_format(&text)) {
        Format::LvsCf => {
            let (c, w) = checked_lvs_cf(&name, &text)?;
            Ok((c, w, "lvs.cf"))
        }
        Format::Keepalived => {
            let (c, w) = keepalived(&name, &text)?;
            Ok((c, w, "keepalived.conf"))
        }
    }
}

/// Guesses the format of a configuration file from its first statements.
pub fn guess_format(text: &str) -> Format {
    const KEEPALIVED: &[&str] = &[
        "global_defs",
        "vrrp_instance",
        "vrrp_script",
        "vrrp_sync_group",
        "virtual_server",
        "virtual_server_group",
        "static_ipaddress",
        "static_routes",
        "include",
        "linkbeat_interfaces",
    ];
    for line in config::lexer::physical_lines(text) {
        let first = line.1.split_whitespace().next().unwrap_or("");
        let first = first.trim_end_matches('{');
        if first.is_empty() || first.starts_with(['#', '!']) {
            continue;
        }
        // keepalived macros (`$NAME=…`) and conditionals (`@id …`) exist only there.
        if first.starts_with(['$', '@']) {
            return Format::Keepalived;
        }
        if KEEPALIVED.contains(&first) {
            return Format::Keepalived;
        }
        if line.1.contains('=')
            || matches!(first, "virtual" | "failover" | "floating" | "local_check")
        {
            return Format::LvsCf;
        }
    }
    Format::LvsCf
}

/// Who acts from the command line: the invoking user, as sudo or the shell tells.
fn cli_actor() -> Actor {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".into());
    Actor {
        user,
        source: Some("cli".into()),
    }
}

async fn import(store: &Store, file: &Path, from: Option<Format>) -> Outcome {
    let (config, warnings, label) = load(file, from)?;
    store
        .replace_config(&config, &cli_actor())
        .await
        .map_err(|e| {
            let message = format!("storing the configuration failed, nothing changed: {e}");
            Failure::storage(&e, message)
        })?;
    let w = match warnings {
        0 => String::new(),
        1 => " (1 warning above)".into(),
        n => format!(" ({n} warnings above)"),
    };
    println!(
        "imported {} as {label}: {}{w}",
        file.display(),
        config::summary(&config)
    );
    Ok(())
}

/// Imports keepalived.conf text (reading `include`d files) and validates the result.
fn keepalived(name: &str, text: &str) -> Result<(Config, usize), Failure> {
    let mut read = |p: &str| std::fs::read_to_string(p);
    let mut glob = |pattern: &str| -> Vec<String> {
        glob::glob(pattern)
            .map(|paths| {
                paths
                    .filter_map(Result::ok)
                    .map(|p| p.display().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let imported = config::keepalived::import(name, text, &mut read, &mut glob)
        .map_err(|e| Failure::invalid(format!("{e}; nothing changed")))?;
    // Each warning starts with the FILE:LINE it is about.
    for w in &imported.warnings {
        match w.split_once(": ") {
            Some((at, msg)) => eprintln!("{at}: warning: {msg}"),
            None => eprintln!("{name}: warning: {w}"),
        }
    }
    let mut diags = config::validate(&imported.config);
    let n = report(name, &mut diags)?;
    Ok((imported.config, imported.warnings.len() + n))
}

async fn export(store: &Store, output: Option<&Path>, force: bool) -> Outcome {
    let config = store
        .load_config()
        .await
        .map_err(|e| Failure::io(format!("reading the stored configuration failed: {e}")))?;
    let refuse = |why: String| {
        Failure::invalid(format!(
            "{why}; nothing written (use --force to export anyway)"
        ))
    };
    let mut diags = config::validate(&config);
    if let Err(f) = report("stored configuration", &mut diags) {
        if !force {
            return Err(refuse(
                f.message.trim_end_matches("; nothing changed").to_string(),
            ));
        }
    }
    if config.virtuals.is_empty() && config.floating.is_empty() && !force {
        return Err(refuse(
            "the stored configuration has no virtual server and no floating address".into(),
        ));
    }
    let text = config::render_checked(&config)
        .map_err(|e| Failure::io(format!("internal error, nothing written: {e}")))?;
    let text = config::whole::with_ends(&text);
    match output {
        None => {
            print!("{text}");
            Ok(())
        }
        Some(path) => crate::atomic_file::write_config(path, text.as_bytes())
            .map_err(|e| Failure::io(format!("{}: cannot write: {e}", path.display()))),
    }
}

/// Reads a password: with echo off on a terminal (twice when `confirm`), else one line
/// from stdin.
fn read_password(user: &str, confirm: bool) -> Result<String, Failure> {
    if std::io::stdin().is_terminal() {
        let prompt = if confirm {
            format!("New password for {user}: ")
        } else {
            format!("Password of {user}: ")
        };
        let first = rpassword::prompt_password(prompt)
            .map_err(|e| Failure::io(format!("reading the password failed: {e}")))?;
        if !confirm {
            return Ok(first);
        }
        let second = rpassword::prompt_password("Repeat the password: ")
            .map_err(|e| Failure::io(format!("reading the password failed: {e}")))?;
        if first != second {
            return Err(Failure::invalid("the passwords differ; nothing changed"));
        }
        Ok(first)
    } else {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            Failure::io(format!(
                "reading the password from standard input failed: {e}"
            ))
        })?;
        let line = s.lines().next().unwrap_or("");
        Ok(line.to_string())
    }
}

async fn passwd(store: &Store, user: &str, role: RoleArg) -> Outcome {
    let password = read_password(user, true)?;
    let role = match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Viewer => Role::Viewer,
    };
    let set = store
        .users()
        .set_password(user, &password, role, &cli_actor())
        .await
        .map_err(|e| {
            let message = format!("setting the password failed, nothing changed: {e}");
            Failure::storage(&e, message)
        })?;
    println!(
        "{} {user}",
        if set.created {
            "created user"
        } else {
            "changed the password of"
        }
    );
    Ok(())
}

/// Unix seconds as the admin UI shows times (UTC).
fn utc(secs: i64) -> String {
    crate::web::control::when(u64::try_from(secs).unwrap_or(0).saturating_mul(1000))
}

async fn token(store: &Store, command: &TokenCommand) -> Outcome {
    let failed = |what: &str| {
        let what = what.to_string();
        move |e: StorageError| {
            let message = format!("{what}: {e}");
            Failure::storage(&e, message)
        }
    };
    match command {
        TokenCommand::Create {
            name,
            role,
            expires,
        } => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Viewer => Role::Viewer,
            };
            let t = store
                .tokens()
                .create(name, role, *expires, &cli_actor())
                .await
                .map_err(failed("creating the token failed, nothing changed"))?;
            let expiry = match t.info.expires_at {
                Some(at) => format!("expires {}", utc(at)),
                None => "never expires".to_string(),
            };
            println!("created token {name} (role {role}, {expiry}); it is shown once, below:");
            println!("{}", t.token);
        }
        TokenCommand::List => {
            let tokens = store
                .tokens()
                .list()
                .await
                .map_err(failed("listing the tokens failed"))?;
            let now = store.now();
            println!(
                "{:<24} {:<6} {:<16} {:<23} {:<33} LAST USED",
                "NAME", "ROLE", "TOKEN", "CREATED", "EXPIRES"
            );
            for t in tokens {
                let expires = match t.expires_at {
                    Some(at) if t.expired(now) => format!("{} (expired)", utc(at)),
                    Some(at) => utc(at),
                    None => "never".into(),
                };
                println!(
                    "{:<24} {:<6} {:<16} {:<23} {:<33} {}",
                    t.name,
                    t.role.as_str(),
                    format!("lvsd_{}_…", t.prefix),
                    utc(t.created_at),
                    expires,
                    t.last_used_at.map_or("never".into(), utc)
                );
            }
        }
        TokenCommand::Revoke { name } => {
            store
                .tokens()
                .revoke(name, &cli_actor())
                .await
                .map_err(failed("revoking the token failed, nothing changed"))?;
            println!("revoked token {name}");
        }
    }
    Ok(())
}

/// `passwd --check`: one answer for a wrong password and an unknown user alike.
async fn check_password(store: &Store, user: &str) -> Outcome {
    let password = read_password(user, false)?;
    let found = store
        .users()
        .verify_password(user, &password)
        .await
        .map_err(|e| Failure::io(format!("checking the password failed: {e}")))?;
    match found {
        Some(_) => {
            println!("the password of {user} is correct");
            Ok(())
        }
        None => Err(Failure::invalid(format!(
            "wrong password, or no user {user}"
        ))),
    }
}

/// `migrate`: the schema was brought up to date by opening the store; says so, and
/// whether a first administrator is still to be created.
async fn migrate(store: &Store, db: &Path) -> Outcome {
    let users = store
        .users()
        .list()
        .await
        .map_err(|e| Failure::io(format!("{}: {e}", db.display())))?;
    store.close().await;
    println!(
        "{}: schema up to date, {} user(s)",
        db.display(),
        users.len()
    );
    if users.is_empty() {
        println!(
            "no user yet: set the first administrator's password with `lvs-director passwd NAME`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_guessing() {
        assert_eq!(
            guess_format("! comment\nglobal_defs {\n}\n"),
            Format::Keepalived
        );
        assert_eq!(guess_format("vrrp_instance VI_1 {\n"), Format::Keepalived);
        assert_eq!(guess_format("# c\nserial_no = 1\n"), Format::LvsCf);
        assert_eq!(guess_format("virtual www {\n"), Format::LvsCf);
        assert_eq!(guess_format(""), Format::LvsCf);
        assert_eq!(
            guess_format("$IF=eth0\nvrrp_instance VI {\n"),
            Format::Keepalived
        );
        assert_eq!(guess_format("@lb1 router_id lb1\n"), Format::Keepalived);
    }

    #[test]
    fn command_line_parses() {
        let cli = Cli::try_parse_from([
            "lvs-director",
            "--db",
            "/tmp/x.db",
            "import",
            "f",
            "--from",
            "keepalived",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Import {
                from: Some(Format::Keepalived),
                ..
            }
        ));
        let cli = Cli::try_parse_from(["lvs-director", "import", "f", "--from", "lvs.cf"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Import {
                from: Some(Format::LvsCf),
                ..
            }
        ));
        assert!(Cli::try_parse_from(["lvs-director", "import", "f", "--from", "xml"]).is_err());
    }
}

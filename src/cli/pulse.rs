//! `lvs-director pulse` (the supervisor) and `lvs-director status` (its state, read
//! through the control socket).

use std::path::PathBuf;
use std::time::Duration;

use super::{Failure, Outcome};
use crate::pulse::logic::control::{self, Request};
use crate::pulse::task::supervisor::{self, Options, SupervisorError};

/// Where `pulse` reads its configuration unless told otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/lvs-director/lvs.cf";

pub fn pulse(
    config: PathBuf,
    control_socket: PathBuf,
    state_dir: PathBuf,
    scripts_dir: PathBuf,
) -> Outcome {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::io(format!("cannot start the async runtime: {e}")))?;
    let opts = Options {
        config,
        control_socket,
        state_dir,
        require_capabilities: true,
        scripts_dir,
        trust_root_config: true,
    };
    rt.block_on(supervisor::run(opts)).map_err(|e| match e {
        SupervisorError::Config { .. } => Failure::invalid(e.to_string()),
        e => Failure::io(e.to_string()),
    })
}

pub fn status(control_socket: &std::path::Path, json: bool) -> Outcome {
    let reply = control::request(control_socket, &Request::Status, Duration::from_secs(10))
        .map_err(|e| Failure::io(e.to_string()))?;
    match (reply.ok, reply.status) {
        (true, Some(s)) if json => {
            let text = serde_json::to_string_pretty(&s)
                .map_err(|e| Failure::io(format!("cannot write the status as JSON: {e}")))?;
            println!("{text}");
            Ok(())
        }
        (true, Some(s)) => {
            print!("{}", control::render(&s, crate::clock::unix_ms()));
            Ok(())
        }
        _ => Err(Failure::io(
            reply
                .error
                .unwrap_or_else(|| "the supervisor sent no status".into()),
        )),
    }
}

/// `reload`, `drain`, `enable`, `hand-over`: one request, its answer printed.
pub fn control(control_socket: &std::path::Path, req: Request) -> Outcome {
    let reply = control::request(control_socket, &req, Duration::from_secs(60))
        .map_err(|e| Failure::io(e.to_string()))?;
    if reply.ok {
        println!("{}", reply.message.unwrap_or_else(|| "done".into()));
        Ok(())
    } else {
        Err(Failure::invalid(
            reply.error.unwrap_or_else(|| "refused".into()),
        ))
    }
}

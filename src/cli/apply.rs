//! `lvs-director apply`: what the admin UI's Apply button does, for scripts and SSH
//! sessions. Prints the diff against the file in force, asks (on a terminal) or
//! requires `--yes`, has the supervisor check the configuration, writes it atomically
//! with the next serial, records the revision, reloads the supervisor and offers it
//! to the peers, printing each answer.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use super::{cli_actor, Failure, Outcome};
use crate::apply::{self, ApplyError};
use crate::cluster::service::Cluster;
use crate::storage::Store;

pub struct ApplyArgs {
    pub lvs_cf: PathBuf,
    pub control_socket: PathBuf,
    pub dry_run: bool,
    pub yes: bool,
    pub sync_port: u16,
}

fn failure(e: ApplyError) -> Failure {
    Failure::io(e.to_string())
}

/// A failed commit: nothing was applied either way (see [`apply::commit`]).
fn not_applied(e: ApplyError) -> Failure {
    match e {
        ApplyError::Storage(e) => Failure::io(format!(
            "nothing was applied: the database could not record the revision ({e}); the file in force is unchanged"
        )),
        e => Failure::io(format!("nothing was applied: {e}")),
    }
}

pub async fn apply(store: &Store, args: &ApplyArgs) -> Outcome {
    let path = &args.lvs_cf;
    let planned = apply::plan(store, path).await.map_err(failure)?;
    let p = &planned.preview;
    if p.unchanged {
        println!(
            "No changes: the stored configuration is the one in force in {} (serial {}). Nothing was written.",
            path.display(),
            crate::config::publish::serial_of(planned.in_force.as_deref().unwrap_or(""))
        );
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for line in &p.diff {
        let _ = writeln!(out, "{}", line.text);
    }
    drop(out);
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(h) = planned.hand_edited(path) {
        eprintln!("warning: {h}");
    }
    if !p.errors.is_empty() {
        for e in &p.errors {
            eprintln!("error: {e}");
        }
        return Err(Failure::invalid(
            "the configuration has errors; nothing was written",
        ));
    }
    if args.dry_run {
        println!(
            "Dry run: serial {} would be written to {}; nothing was written.",
            p.serial,
            path.display()
        );
        return Ok(());
    }
    if !args.yes {
        confirm(&format!("Apply serial {} to {}?", p.serial, path.display()))?;
    }
    let cluster = Cluster::new(
        store.clone(),
        path.clone(),
        args.control_socket.clone(),
        Arc::new(tokio::sync::Mutex::new(())),
        args.sync_port,
    );
    let _one_at_a_time = cluster.apply_lock.lock().await;
    cluster
        .supervisor_check(&p.text)
        .await
        .map_err(|e| Failure::invalid(format!("{e}; nothing was written")))?;
    let rev = apply::commit(store, path, &planned, &cli_actor(), "", &[])
        .await
        .map_err(not_applied)?;
    println!(
        "Revision {} (serial {}) written to {}.",
        rev.info.id,
        p.serial,
        path.display()
    );
    let (ok, answer) = cluster.supervisor_reload().await;
    println!("{answer}");
    store
        .audit()
        .record(&cli_actor(), "reload", "supervisor", None, Some(&answer))
        .await
        .map_err(|e| Failure::io(e.to_string()))?;
    if !ok {
        return Err(Failure::invalid(
            "the supervisor refused it (the file is written, the running configuration unchanged)",
        ));
    }
    drop(_one_at_a_time);
    for a in cluster.offer_all().await {
        if a.ok {
            println!("{a}");
        } else {
            eprintln!("warning: {a}");
        }
    }
    Ok(())
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirm(question: &str) -> Outcome {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::io(
            "standard input is not a terminal: give --yes to apply without a question",
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::io(e.to_string()))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Failure::invalid("not applied; nothing was written"))
    }
}

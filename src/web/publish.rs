//! Apply, history and rollback: how the stored configuration becomes the `lvs.cf` in
//! force.
//!
//! Apply shows the pending changes as a diff of the rendering against the file in
//! force; applying writes it atomically with the next serial, records the revision,
//! and asks the supervisor to reload, reporting its answer. The form carries a digest
//! of the previewed text: if anything changed in between, nothing is written and the
//! new preview is shown instead. A rollback loads an old revision into the stored
//! configuration and then goes through the same Apply.

use crate::apply::{self, ApplyError};
use crate::sync::Recover;
use std::path::Path as FsPath;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::auth::{with_flash, AdminPost, Auth};
use super::control::{paginate, when};
use super::{html, see_other, AppState, Cached, Chrome, WebError};
pub use crate::config::publish::{diff, preview, serial_of, DiffLine, Preview};
use crate::config::{parse, render_with_serial, Config, Severity};
use crate::pulse::io::scripts;
use crate::pulse::logic::control::Request;
use crate::storage::{action, StorageError};

/// Revisions per page of the history.
const HISTORY_PAGE: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/apply", get(apply_page).post(apply))
        .route("/apply/import", post(import_in_force))
        .route("/history", get(history))
        .route("/history/{id}", get(revision))
        .route("/history/{id}/rollback", post(rollback))
}

async fn read_in_force(path: &FsPath) -> Result<Option<String>, WebError> {
    Ok(apply::read_in_force(path).await?)
}

/// True when Apply has something to do. Cached per (database change the stored
/// configuration was read at, file stamp), so that every page can show the marker for
/// the price of a `stat`. Keyed by the snapshot's own change counter, not one read
/// again: that costs a query per page, and a change landing in between would cache the
/// older configuration's answer under the newer key.
pub async fn has_pending(state: &AppState, stored: &Cached) -> bool {
    let path = &state.settings.lvs_cf;
    let config = &stored.config;
    let key = (stored.snapshot.change, apply::stamp(path));
    if let Some((k, pending)) = state.pending_cache.locked().as_ref() {
        if *k == key {
            return *pending;
        }
    }
    let pending = match read_in_force(path).await {
        Ok(Some(text)) => render_with_serial(config, serial_of(&text)) != text,
        Ok(None) => config != &Config::default(),
        Err(_) => true,
    };
    *state.pending_cache.locked() = Some((key, pending));
    pending
}

#[derive(Template)]
#[template(path = "apply.html")]
struct ApplyPage {
    chrome: Chrome,
    path: String,
    exists: bool,
    preview: Preview,
    /// The file in force is not what lvs-director last wrote.
    hand_edited: Option<String>,
    error: Option<String>,
}

async fn show_apply(
    state: &AppState,
    auth: &Auth,
    error: Option<String>,
) -> Result<Response, WebError> {
    let planned = apply::plan(&state.store, &state.settings.lvs_cf).await?;
    let hand_edited = planned.hand_edited(&state.settings.lvs_cf);
    let stored = state.stored().await?;
    let mut preview = planned.preview.clone();
    // The file Apply writes is never root's alone: the supervisor holds its commands to
    // the scripts directory and refuses it whole otherwise (an imported configuration
    // can hold such commands; the forms refuse them).
    preview.warnings.extend(
        scripts::diagnostics(
            &stored.config,
            &state.settings.scripts_dir,
            Severity::Warning,
        )
        .into_iter()
        .map(|d| {
            format!(
                "the supervisor will refuse this configuration: {}",
                d.message
            )
        }),
    );
    let in_force = planned.in_force;
    let status = if error.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let page = ApplyPage {
        chrome: Chrome::new(state, auth, "apply", "Apply").await?,
        path: state.settings.lvs_cf.display().to_string(),
        exists: in_force.is_some(),
        preview,
        hand_edited,
        error,
    };
    Ok((status, html(&page)).into_response())
}

pub async fn apply_page(State(state): State<AppState>, auth: Auth) -> Result<Response, WebError> {
    show_apply(&state, &auth, None).await
}

/// What became of the reload request, in words for the page and the audit log.
async fn tell_supervisor(state: &AppState) -> (bool, String) {
    match state.live.act(Request::Reload).await {
        Ok(reply) => apply::reload_said(reply),
        Err(e) => match &state.start_supervisor {
            Some(start) => {
                let answer = start().await;
                state.live.invalidate().await;
                (true, answer)
            }
            None => (
                true,
                format!(
                    "The supervisor is not running ({e}); it will read the file when it starts."
                ),
            ),
        },
    }
}

/// What became of an Apply (the admin UI's and the API's): refused, with why and
/// nothing written, or applied, with the supervisor's and the peers' answers.
#[derive(Debug)]
pub enum Applied {
    /// The configuration or the file in force changed since the preview.
    Stale,
    /// The configuration has errors: these.
    Invalid(Vec<String>),
    /// The supervisor says it could not run it.
    Refused(String),
    /// Nothing was applied: the file could not be written or the revision recorded.
    Failed(String),
    Done {
        revision: i64,
        serial: u32,
        /// The supervisor's answer.
        answer: String,
        /// The supervisor and every peer run it.
        ok: bool,
        /// Each peer's answer.
        peers: Vec<crate::cluster::service::PeerAnswer>,
    },
}

/// Applies the stored configuration if its preview is still the one whose digest is
/// `digest`: writes `lvs.cf`, records the revision, has the supervisor reload, then
/// offers it to the peers (only once this director runs it). One at a time.
pub async fn apply_stored(
    state: &AppState,
    actor: &crate::storage::Actor,
    comment: &str,
    digest: &str,
) -> Result<Applied, WebError> {
    let _one_at_a_time = state.apply_lock.lock().await;
    let path = state.settings.lvs_cf.clone();
    let planned = apply::plan(&state.store, &path).await?;
    let p = &planned.preview;
    if digest != p.digest {
        return Ok(Applied::Stale);
    }
    if !p.errors.is_empty() {
        return Ok(Applied::Invalid(p.errors.clone()));
    }
    if let Err(e) = state.cluster.supervisor_check(&p.text).await {
        return Ok(Applied::Refused(e));
    }
    // The file the supervisor reads must always be one it can read back: `preview`
    // lists a rendering that does not among the errors above, so it never gets here.
    let rev = match apply::commit(&state.store, &path, &planned, actor, comment.trim(), &[]).await {
        Ok(rev) => rev,
        Err(e @ ApplyError::Write { .. }) => {
            // Not a secret and the administrator's to fix (a folder, permissions).
            tracing::error!("Apply: {e}");
            return Ok(Applied::Failed(format!(
                "Nothing was applied: {e}. The file in force and the supervisor are unchanged."
            )));
        }
        Err(ApplyError::Storage(e)) => {
            // Locked past the busy timeout, full, read-only: the administrator's to
            // know, and nothing changed (the record is committed only after the write,
            // and the file is put back if the commit fails).
            tracing::error!(
                "Apply: the revision could not be recorded in {}: {e}",
                state.store.path().display()
            );
            return Ok(Applied::Failed(format!(
                "Nothing was applied: the configuration database could not record the revision ({e}). The file in force and the supervisor are unchanged; try again once the database is writable."
            )));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(
        user = actor.user,
        serial = p.serial,
        revision = rev.info.id,
        "applied {}",
        path.display()
    );
    let (ok, answer) = tell_supervisor(state).await;
    state
        .store
        .audit()
        .record(actor, "reload", "supervisor", None, Some(&answer))
        .await?;
    // The peers take it only once this director runs it.
    let peers = if ok {
        state.cluster.offer_all().await
    } else {
        Vec::new()
    };
    Ok(Applied::Done {
        revision: rev.info.id,
        serial: p.serial,
        answer,
        ok: ok && peers.iter().all(|a| a.ok),
        peers,
    })
}

pub async fn apply(State(state): State<AppState>, posted: AdminPost) -> Result<Response, WebError> {
    let auth = &posted.auth;
    let said = match apply_stored(
        &state,
        &auth.actor(),
        posted.form.get("comment"),
        posted.form.get("digest"),
    )
    .await?
    {
        Applied::Stale => "The configuration or the file in force changed since the preview you applied; nothing was written. Review the new preview below.".to_string(),
        Applied::Invalid(_) => "The configuration has errors (listed below); nothing was written.".to_string(),
        Applied::Refused(e) => format!("{e}; nothing was written."),
        Applied::Failed(e) => e,
        Applied::Done {
            revision,
            serial,
            answer,
            ok,
            peers,
        } => {
            let mut text = format!(
                "Revision {revision} (serial {serial}) written to {}. {answer}",
                state.settings.lvs_cf.display()
            );
            for a in &peers {
                text.push_str(&format!(" {a}"));
            }
            return Ok(with_flash(
                see_other("/apply"),
                if ok { "ok" } else { "error" },
                &text,
                state.settings.secure_cookies,
            ));
        }
    };
    show_apply(&state, auth, Some(said)).await
}

/// Replaces the stored configuration with the file in force (to keep hand edits).
/// The file in force as a configuration to import, or why it cannot be: missing, or
/// with errors (the first five, with their lines).
pub async fn valid_in_force(state: &AppState) -> Result<Result<Config, String>, WebError> {
    let path = &state.settings.lvs_cf;
    let Some(text) = read_in_force(path).await? else {
        return Ok(Err(format!(
            "{} does not exist: nothing to import",
            path.display()
        )));
    };
    let file = path.display().to_string();
    let checked = crate::config::check(&text);
    let Some(config) = checked.valid() else {
        let first: Vec<String> = checked.error_lines(&file).into_iter().take(5).collect();
        return Ok(Err(format!(
            "{file} was not imported, it has errors: {}",
            first.join("; ")
        )));
    };
    Ok(Ok(config.clone()))
}

pub async fn import_in_force(
    State(state): State<AppState>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let secure = state.settings.secure_cookies;
    let file = state.settings.lvs_cf.display().to_string();
    let config = match valid_in_force(&state).await? {
        Ok(c) => c,
        Err(why) => return Ok(with_flash(see_other("/apply"), "error", &why, secure)),
    };
    state
        .store
        .replace_config(&config, &posted.auth.actor())
        .await?;
    Ok(with_flash(
        see_other("/apply"),
        "ok",
        &format!("{file} imported into the stored configuration."),
        secure,
    ))
}

#[derive(Debug, Clone)]
pub struct RevisionRow {
    pub id: i64,
    pub serial: u32,
    pub at: String,
    pub by: String,
    pub comment: String,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    chrome: Chrome,
    rows: Vec<RevisionRow>,
    page: usize,
    pages: usize,
}

#[derive(Debug, Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    pub page: Option<usize>,
}

pub async fn history(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let total = state
        .store
        .revisions()
        .latest()
        .await?
        .map_or(0, |r| r.info.id as usize);
    let (page, pages, start, _) = paginate(total, q.page, HISTORY_PAGE);
    let rows = state
        .store
        .revisions()
        .list(HISTORY_PAGE as u32, start as u32)
        .await?
        .into_iter()
        .map(|r| RevisionRow {
            id: r.id,
            serial: r.serial_no,
            at: when(u64::try_from(r.applied_at).unwrap_or(0) * 1000),
            by: r.applied_by,
            comment: r.comment,
        })
        .collect();
    Ok(html(&HistoryPage {
        chrome: Chrome::new(&state, &auth, "history", "History").await?,
        rows,
        page,
        pages,
    }))
}

#[derive(Template)]
#[template(path = "revision.html")]
struct RevisionPage {
    chrome: Chrome,
    row: RevisionRow,
    previous: Option<i64>,
    diff: Vec<DiffLine>,
    text: String,
}

pub async fn revision(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let rev = state.store.revisions().get(id).await?;
    let previous = match state.store.revisions().get(id - 1).await {
        Ok(p) => Some(p),
        Err(StorageError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let diff = diff(previous.as_ref().map_or("", |p| p.text.as_str()), &rev.text);
    Ok(html(&RevisionPage {
        chrome: Chrome::new(&state, &auth, "history", format!("Revision {id}")).await?,
        row: RevisionRow {
            id: rev.info.id,
            serial: rev.info.serial_no,
            at: when(u64::try_from(rev.info.applied_at).unwrap_or(0) * 1000),
            by: rev.info.applied_by.clone(),
            comment: rev.info.comment.clone(),
        },
        previous: previous.map(|p| p.info.id),
        diff,
        text: rev.text,
    }))
}

/// Loads revision `id` into the stored configuration; Apply then shows and writes it.
pub async fn rollback(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let Ok(info) = load_revision(&state, id, &posted.auth.actor(), None).await? else {
        return Err(WebError::Internal(
            "an unconditional rollback was refused as stale".into(),
        ));
    };
    Ok(with_flash(
        see_other("/apply"),
        "ok",
        &format!(
            "Revision {id} (serial {}) loaded into the configuration. Review the changes below and Apply to put it in force.",
            info.serial_no
        ),
        state.settings.secure_cookies,
    ))
}

/// Loads revision `id` into the stored configuration (it is not applied), with its
/// audit entry. With `expected`, only while the stored configuration's
/// [`config_digest`](crate::storage::config_digest) is still that: `Ok(Err(current))`
/// otherwise, with nothing changed.
pub async fn load_revision(
    state: &AppState,
    id: i64,
    actor: &crate::storage::Actor,
    expected: Option<&str>,
) -> Result<Result<crate::storage::RevisionInfo, String>, WebError> {
    let _one_at_a_time = state.apply_lock.lock().await;
    let rev = state.store.revisions().get(id).await?;
    let parsed = parse(&rev.text).map_err(|e| {
        WebError::Internal(format!(
            "revision {id} does not read back: {}",
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    match expected {
        Some(digest) => {
            if let Err(current) = state
                .store
                .replace_config_if(&parsed.config, actor, digest)
                .await?
            {
                return Ok(Err(current));
            }
        }
        None => state.store.replace_config(&parsed.config, actor).await?,
    }
    state
        .store
        .audit()
        .record(
            actor,
            action::REPLACE,
            "configuration",
            None,
            Some(&format!(
                "rollback to revision {id} (serial {})",
                rev.info.serial_no
            )),
        )
        .await?;
    Ok(Ok(rev.info))
}

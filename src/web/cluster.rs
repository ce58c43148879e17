//! The cluster page: configuration sync with the peer directors, as this director
//! sees it (on or off and why, each peer's serial and relation), and a conflict's
//! diff with the administrator's choice.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::auth::{with_flash, AdminPost, Auth};
use super::control::when;
use super::{html, see_other, AppState, Chrome, WebError};
use crate::apply;
use crate::cluster::lineage::Relation;
use crate::cluster::service::View;
use crate::config::publish::{diff, DiffLine};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cluster", get(page))
        .route("/cluster/choose", post(choose))
}

/// One peer, display-ready.
pub struct PeerRow {
    pub name: String,
    pub node: String,
    pub serial: String,
    pub state: String,
    /// `ok`, `warn` or `error`.
    pub class: &'static str,
    pub seen: String,
    pub conflict: Option<ConflictRow>,
}

pub struct ConflictRow {
    pub why: String,
    pub peer_serial: u32,
    /// Ours (−) against the peer's (+).
    pub diff: Vec<DiffLine>,
}

#[derive(Template)]
#[template(path = "cluster.html")]
struct ClusterPage {
    chrome: Chrome,
    off: Option<String>,
    /// Off because there is no peer: said, not alarmed.
    alone: bool,
    port: u16,
    serial: u32,
    refused: u64,
    taken: u64,
    peers: Vec<PeerRow>,
}

/// The line the frame of every page shows while sync is off or in conflict.
pub fn alert(view: &View) -> Option<String> {
    if let Some(off) = view.off.as_ref().filter(|_| !view.alone) {
        return Some(off.clone());
    }
    let conflicts: Vec<&str> = view
        .peers
        .iter()
        .filter(|p| p.conflict.is_some())
        .map(|p| p.name.as_str())
        .collect();
    (!conflicts.is_empty()).then(|| {
        format!(
            "CONFLICT: this director's configuration and {}'s were changed apart; choose one on the Cluster page",
            conflicts.join(", ")
        )
    })
}

async fn page(State(state): State<AppState>, auth: Auth) -> Result<Response, WebError> {
    let view = state.cluster.view();
    let in_force = apply::read_in_force(&state.settings.lvs_cf).await?;
    let ours = in_force.clone().unwrap_or_default();
    let peers = peer_rows(&view, &ours);
    Ok(html(&ClusterPage {
        chrome: Chrome::new(&state, &auth, "cluster", "Cluster").await?,
        off: view.off.clone(),
        alone: view.alone,
        port: view.port,
        serial: crate::config::publish::serial_of(&ours),
        refused: view.refused,
        taken: view.taken,
        peers,
    }))
}

/// Each peer as the Cluster page (and the API) show it; `ours` is the file in force,
/// the side a conflict's diff starts from.
pub fn peer_rows(view: &View, ours: &str) -> Vec<PeerRow> {
    view.peers
        .iter()
        .map(|p| {
            let (state_text, class) = match (&p.error, p.relation, &p.conflict) {
                (Some(e), _, _) => (format!("unreachable: {e}"), "error"),
                (None, _, Some(c)) => (format!("CONFLICT: {}", c.why), "error"),
                (None, Some(Relation::InStep), _) => ("in step".to_string(), "ok"),
                (None, Some(Relation::PeerNewer), _) => {
                    ("the peer's is newer: being taken".to_string(), "warn")
                }
                (None, Some(Relation::LocalNewer), _) => (
                    p.head.as_ref().and_then(|h| h.held.clone()).map_or(
                        "this director's is newer: the peer takes it".to_string(),
                        |w| format!("this director's is newer, but the peer holds: {w}"),
                    ),
                    "warn",
                ),
                (None, Some(Relation::Diverged), None) | (None, None, None) => {
                    ("not asked yet".to_string(), "warn")
                }
            };
            PeerRow {
                name: p.name.clone(),
                node: p.node.clone().unwrap_or_default(),
                serial: p.head.as_ref().map_or("?".into(), |h| h.serial.to_string()),
                state: state_text,
                class,
                seen: p.seen_ms.map(when).unwrap_or_else(|| "never".into()),
                conflict: p.conflict.as_ref().map(|c| ConflictRow {
                    why: c.why.clone(),
                    peer_serial: c.peer_serial,
                    diff: diff(ours, &c.peer_text),
                }),
            }
        })
        .collect()
}

/// Settles a conflict: `side` is `peer` (take the peer's configuration) or `ours`
/// (apply this director's again over the peer's, which then takes it).
async fn choose(State(state): State<AppState>, posted: AdminPost) -> Result<Response, WebError> {
    let peer = posted.form.get("peer").to_string();
    let result = match posted.form.get("side") {
        "peer" => state.cluster.choose_peers(&peer).await,
        "ours" => state.cluster.choose_ours(&peer, &posted.auth.actor()).await,
        other => {
            return Err(WebError::BadRequest(format!(
                "side must be `peer` or `ours`, not `{other}`"
            )))
        }
    };
    let (kind, text) = match result {
        Ok(said) => ("ok", said),
        Err(why) => ("error", format!("Nothing changed: {why}")),
    };
    Ok(with_flash(
        see_other("/cluster"),
        kind,
        &text,
        state.settings.secure_cookies,
    ))
}

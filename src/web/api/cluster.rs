//! Configuration sync with the peer directors, as the Cluster page shows it: each
//! peer's state, and settling a conflict by choosing a side.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{Locked, Problem, Refusals, ViewerRefused};
use super::resources::{body, DiffLine};
use super::revisions::web_problem;
use super::Caller;
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cluster))
        .routes(routes!(choose))
}

/// A conflict with a peer: both configurations changed apart.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConflictDoc {
    pub why: String,
    pub peer_serial: u32,
    /// From this director's file in force to the peer's.
    pub diff: Vec<DiffLine>,
}

/// One peer director.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeerDoc {
    pub name: String,
    /// The host name it reports.
    pub node: String,
    /// The serial it runs; `?` before it answered.
    pub serial: String,
    /// In words: in step, which side is newer, unreachable and why, a conflict.
    pub state: String,
    /// `ok`, `warn` or `error`.
    pub level: String,
    /// When it last answered.
    pub seen: String,
    pub conflict: Option<ConflictDoc>,
}

/// Configuration sync as this director sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterDoc {
    /// Why sync is off; none while it is on.
    pub off: Option<String>,
    /// Off because this director has no peer (nothing to worry about).
    pub alone: bool,
    pub port: u16,
    pub peers: Vec<PeerDoc>,
    /// Connections refused for not authenticating.
    pub refused: u64,
    /// Configurations taken from a peer.
    pub taken: u64,
}

/// Configuration sync: each peer's state, and the diff of a conflict.
#[utoipa::path(
    get,
    path = "/cluster",
    tag = "cluster",
    responses(
        (status = 200, description = "Sync's state", body = ClusterDoc),
        Refusals,
        Locked,
    )
)]
async fn cluster(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> Result<Json<ClusterDoc>, Problem> {
    let view = state.cluster.view();
    let ours = crate::apply::read_in_force(&state.settings.lvs_cf)
        .await
        .map_err(|e| web_problem(e.into()))?
        .unwrap_or_default();
    let peers = crate::web::cluster::peer_rows(&view, &ours)
        .into_iter()
        .map(|p| PeerDoc {
            name: p.name,
            node: p.node,
            serial: p.serial,
            state: p.state,
            level: p.class.to_string(),
            seen: p.seen,
            conflict: p.conflict.map(|c| ConflictDoc {
                why: c.why,
                peer_serial: c.peer_serial,
                diff: c.diff.into_iter().map(DiffLine::from).collect(),
            }),
        })
        .collect();
    Ok(Json(ClusterDoc {
        off: view.off,
        alone: view.alone,
        port: view.port,
        peers,
        refused: view.refused,
        taken: view.taken,
    }))
}

/// Which side of a conflict wins.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Take the peer's configuration here.
    Peer,
    /// Apply this director's again over the peer's, which then takes it.
    Ours,
}

/// A choice in a conflict with a peer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub peer: String,
    pub side: Side,
}

/// What a choice did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Chosen {
    pub said: String,
}

/// Settles a conflict with a peer by choosing a side, as the Cluster page does.
#[utoipa::path(
    post,
    path = "/cluster/choose",
    tag = "cluster",
    request_body = Choice,
    responses(
        (status = 200, description = "Done: what happened", body = Chosen),
        (status = 400, description = "The body is not the JSON expected", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing changed, and why (no such peer, unreachable…)", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn choose(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: axum::body::Bytes,
) -> Result<Json<Chosen>, Problem> {
    caller.admin()?;
    let choice: Choice = body(&bytes)?;
    let result = match choice.side {
        Side::Peer => state.cluster.choose_peers(&choice.peer).await,
        Side::Ours => {
            state
                .cluster
                .choose_ours(&choice.peer, &caller.actor())
                .await
        }
    };
    result
        .map(|said| Json(Chosen { said }))
        .map_err(|why| Problem::new(StatusCode::CONFLICT, format!("nothing changed: {why}")))
}

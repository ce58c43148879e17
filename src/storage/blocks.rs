//! The blocks of `lvs.cf` (virtual servers, real servers, floating addresses, local
//! checks) as rows, with one generic implementation of list/get/create/update/delete/
//! reorder for all of them.
//!
//! Every kind is stored the same way (see `migrations/0001_initial.sql`): a row with id,
//! position, name, version and comments, plus one `(owner_id, keyword, value)` table per
//! keyword struct of the block. A [`Table`] describes that layout and a [`Rows`] says
//! which list of the kind is meant (the virtual servers, the real servers of one virtual
//! server, …); the SQL below is written once against them.

use std::collections::HashMap;
use std::marker::PhantomData;

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Row, Sqlite, SqliteConnection};

use crate::config::model::{name_problem, Keywords};
use crate::config::{
    render, CheckSettings, Comments, Config, FloatingAddress, FloatingSettings, LocalCheck,
    LocalCheckSettings, RealServer, RealServerSettings, VirtualServer, VirtualSettings,
    VrrpInstance, VrrpSettings,
};

use super::audit::{self, action};
use super::error::{Result, StorageError};
use super::keywords::{check_writable, comments_from_json, comments_to_json, decode};
use super::{Actor, Store};
use sealed::Sealed as _;

/// `virtual_servers.kind` of `virtual` blocks.
pub(crate) const VIRTUAL: &str = "virtual";
/// `virtual_servers.kind` of legacy `failover` blocks.
pub(crate) const FAILOVER: &str = "failover";

/// A stored block with its identity and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    /// Stable id: never reused, unchanged by edits and reorders.
    pub id: i64,
    /// Incremented by every saved change; an edit sends back the version it started from.
    pub version: i64,
    pub item: T,
}

/// How one kind of block is laid out in the database.
#[doc(hidden)]
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// One row, for messages: "virtual server".
    pub what: &'static str,
    /// Several rows, for messages: "virtual servers".
    pub plural: &'static str,
    /// The block's keyword in `lvs.cf`, for audit objects ("floating nginx").
    pub keyword: &'static str,
    /// The column holding the parent's id, for kinds that live inside another block.
    pub parent_column: Option<&'static str>,
    /// The keyword tables, one per keyword struct of the block, in model order.
    pub sections: &'static [&'static str],
}

const VIRTUAL_SERVERS: Table = Table {
    name: "virtual_servers",
    what: "virtual server",
    plural: "virtual servers",
    keyword: VIRTUAL,
    parent_column: None,
    sections: &["virtual_server_settings", "monitoring_scripts"],
};

const REAL_SERVERS: Table = Table {
    name: "real_servers",
    what: "real server",
    plural: "real servers",
    keyword: "server",
    parent_column: Some("virtual_server_id"),
    sections: &["real_server_settings", "real_server_monitoring_scripts"],
};

const FLOATING_ADDRESSES: Table = Table {
    name: "floating_addresses",
    what: "floating address",
    plural: "floating addresses",
    keyword: "floating",
    parent_column: None,
    sections: &["floating_address_settings"],
};

const LOCAL_CHECKS: Table = Table {
    name: "local_checks",
    what: "local check",
    plural: "local checks",
    keyword: "local_check",
    parent_column: None,
    sections: &["local_check_settings", "local_check_monitoring_scripts"],
};

const VRRP_INSTANCES: Table = Table {
    name: "vrrp_instances",
    what: "VRRP instance",
    plural: "VRRP instances",
    keyword: "vrrp",
    parent_column: None,
    sections: &["vrrp_instance_settings"],
};

/// Which list of a kind of block: the part of the key that is not the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    /// The whole table (floating addresses, local checks; or every real server).
    All,
    /// The virtual servers of one `kind` (`virtual` or `failover`).
    Kind(&'static str),
    /// The real servers of one virtual server.
    Parent(i64),
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

impl Rows {
    /// The column that tells these rows from the rest of the table, if any.
    fn column(self) -> Option<&'static str> {
        match self {
            Rows::All => None,
            Rows::Kind(_) => Some("kind"),
            Rows::Parent(_) => Some("virtual_server_id"),
        }
    }

    /// `AND <column> = ?` for a WHERE clause on the block table aliased `e`; the value
    /// is bound by [`Rows::bind`].
    fn condition(self) -> String {
        self.column()
            .map_or_else(String::new, |c| format!(" AND e.{c} = ?"))
    }

    fn bind(self, q: Query<'_>) -> Query<'_> {
        match self {
            Rows::All => q,
            Rows::Kind(kind) => q.bind(kind),
            Rows::Parent(id) => q.bind(id),
        }
    }
}

/// A [`Rows`] with the names that messages and audit entries need.
#[doc(hidden)]
#[derive(Debug)]
pub struct Resolved {
    rows: Rows,
    /// Kind and name of the parent virtual server.
    parent: Option<(String, String)>,
}

impl Resolved {
    /// The audit object of the block `name`: `virtual www`, `virtual www server web1`.
    fn object(&self, table: &Table, name: &str) -> String {
        match (&self.rows, &self.parent) {
            (Rows::Kind(kind), _) => format!("{kind} {name}"),
            (_, Some((kind, parent))) => format!("{kind} {parent} {} {name}", table.keyword),
            _ => format!("{} {name}", table.keyword),
        }
    }

    /// The list as a whole: `real servers of virtual www`.
    fn list(&self, table: &Table) -> String {
        match (&self.rows, &self.parent) {
            (Rows::Kind(kind), _) if *kind != VIRTUAL => format!("{kind} services"),
            (_, Some((kind, parent))) => format!("{} of {kind} {parent}", table.plural),
            _ => table.plural.to_string(),
        }
    }
}

/// Refuses a block name that `lvs.cf` cannot hold: whatever the database holds must
/// render to a file the parser reads back. The rule is the model's ([`name_problem`]).
fn check_name(table: &Table, r: &Resolved, name: &str) -> Result<()> {
    match name_problem(name) {
        None => Ok(()),
        Some(reason) => Err(StorageError::Invalid {
            what: r.object(table, &format!("{name:?}")),
            message: reason.to_string(),
        }),
    }
}

/// Block `id` of `table` is not there (or not in the list asked for).
fn missing(table: &Table, id: i64) -> StorageError {
    StorageError::not_found(format!("{} #{id}", table.what))
}

async fn resolve(conn: &mut SqliteConnection, rows: Rows) -> Result<Resolved> {
    let parent = match rows {
        Rows::Parent(id) => {
            let row: Option<(String, String)> =
                sqlx::query_as("SELECT kind, name FROM virtual_servers WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            Some(row.ok_or_else(|| StorageError::not_found(format!("virtual server #{id}")))?)
        }
        _ => None,
    };
    Ok(Resolved { rows, parent })
}

/// A block row as read, before its keywords are decoded by the model.
#[doc(hidden)]
#[derive(Debug)]
pub struct RawRow {
    pub id: i64,
    pub parent: Option<i64>,
    pub version: i64,
    pub name: String,
    pub comments: Comments,
    /// `(keyword, text)` rows of each keyword table, in [`Table::sections`] order.
    pub sections: Vec<Vec<(String, String)>>,
}

impl RawRow {
    /// Decodes keyword table `i` into its model struct.
    fn section<K: Keywords>(&self, table: &Table, i: usize) -> Result<K> {
        decode(&self.sections[i])
            .map_err(|bad| bad.corrupt(table.sections[i], format!("{} (`{}`)", self.id, self.name)))
    }
}

mod sealed {
    use super::*;

    /// What the generic code needs to know about a kind of block. Sealed: the set of
    /// kinds is the schema's.
    pub trait Sealed: Clone + PartialEq + Send + Sync + Sized + 'static {
        const TABLE: &'static Table;
        /// True for virtual servers, whose real servers are rows of their own.
        const HAS_SERVERS: bool = false;
        fn name(&self) -> &str;
        fn comments(&self) -> &Comments;
        /// Refuses values that would not read back unchanged.
        fn check(&self, what: &str) -> Result<()>;
        /// The `(keyword, canonical text)` rows of each keyword table.
        fn sections(&self) -> Vec<Vec<(&'static str, String)>>;
        fn from_raw(raw: RawRow) -> Result<Self>;
        /// The block alone as a configuration, to render it for the audit log.
        fn fragment(&self, r: &Resolved) -> Config;
        fn servers(&self) -> &[RealServer] {
            &[]
        }
        fn servers_mut(&mut self) -> Option<&mut Vec<RealServer>> {
            None
        }
    }
}

/// A kind of block that the database stores: [`VirtualServer`], [`RealServer`],
/// [`FloatingAddress`] and [`LocalCheck`].
pub trait Block: sealed::Sealed {}

impl Block for VirtualServer {}
impl Block for RealServer {}
impl Block for FloatingAddress {}
impl Block for LocalCheck {}
impl Block for VrrpInstance {}

/// Puts a virtual server into a configuration as a `virtual` or a `failover` block.
fn with_service(kind: &str, v: VirtualServer) -> Config {
    let mut c = Config::default();
    if kind == FAILOVER {
        c.failovers.push(v);
    } else {
        c.virtuals.push(v);
    }
    c
}

impl sealed::Sealed for VirtualServer {
    const TABLE: &'static Table = &VIRTUAL_SERVERS;
    const HAS_SERVERS: bool = true;
    fn name(&self) -> &str {
        &self.name
    }
    fn comments(&self) -> &Comments {
        &self.comments
    }
    fn check(&self, what: &str) -> Result<()> {
        check_writable::<VirtualSettings>(what, &self.settings)?;
        check_writable::<CheckSettings>(what, &self.check)
    }
    fn sections(&self) -> Vec<Vec<(&'static str, String)>> {
        vec![self.settings.entries(), self.check.entries()]
    }
    fn from_raw(raw: RawRow) -> Result<Self> {
        Ok(VirtualServer {
            settings: raw.section(Self::TABLE, 0)?,
            check: raw.section(Self::TABLE, 1)?,
            servers: Vec::new(),
            name: raw.name,
            comments: raw.comments,
        })
    }
    fn fragment(&self, r: &Resolved) -> Config {
        let kind = match r.rows {
            Rows::Kind(kind) => kind,
            _ => VIRTUAL,
        };
        with_service(kind, self.clone())
    }
    fn servers(&self) -> &[RealServer] {
        &self.servers
    }
    fn servers_mut(&mut self) -> Option<&mut Vec<RealServer>> {
        Some(&mut self.servers)
    }
}

impl sealed::Sealed for RealServer {
    const TABLE: &'static Table = &REAL_SERVERS;
    fn name(&self) -> &str {
        &self.name
    }
    fn comments(&self) -> &Comments {
        &self.comments
    }
    fn check(&self, what: &str) -> Result<()> {
        check_writable::<RealServerSettings>(what, &self.settings)?;
        check_writable::<CheckSettings>(what, &self.check)
    }
    fn sections(&self) -> Vec<Vec<(&'static str, String)>> {
        vec![self.settings.entries(), self.check.entries()]
    }
    fn from_raw(raw: RawRow) -> Result<Self> {
        Ok(RealServer {
            settings: raw.section(Self::TABLE, 0)?,
            check: raw.section(Self::TABLE, 1)?,
            name: raw.name,
            comments: raw.comments,
        })
    }
    /// Inside its virtual server's header, so the entry says whose server it is.
    fn fragment(&self, r: &Resolved) -> Config {
        let (kind, parent) = r
            .parent
            .clone()
            .unwrap_or_else(|| (VIRTUAL.into(), String::new()));
        let v = VirtualServer {
            name: parent,
            servers: vec![self.clone()],
            ..VirtualServer::default()
        };
        with_service(&kind, v)
    }
}

impl sealed::Sealed for FloatingAddress {
    const TABLE: &'static Table = &FLOATING_ADDRESSES;
    fn name(&self) -> &str {
        &self.name
    }
    fn comments(&self) -> &Comments {
        &self.comments
    }
    fn check(&self, what: &str) -> Result<()> {
        check_writable::<FloatingSettings>(what, &self.settings)
    }
    fn sections(&self) -> Vec<Vec<(&'static str, String)>> {
        vec![self.settings.entries()]
    }
    fn from_raw(raw: RawRow) -> Result<Self> {
        Ok(FloatingAddress {
            settings: raw.section(Self::TABLE, 0)?,
            name: raw.name,
            comments: raw.comments,
        })
    }
    fn fragment(&self, _: &Resolved) -> Config {
        Config {
            floating: vec![self.clone()],
            ..Config::default()
        }
    }
}

impl sealed::Sealed for LocalCheck {
    const TABLE: &'static Table = &LOCAL_CHECKS;
    fn name(&self) -> &str {
        &self.name
    }
    fn comments(&self) -> &Comments {
        &self.comments
    }
    fn check(&self, what: &str) -> Result<()> {
        check_writable::<LocalCheckSettings>(what, &self.settings)?;
        check_writable::<CheckSettings>(what, &self.check)
    }
    fn sections(&self) -> Vec<Vec<(&'static str, String)>> {
        vec![self.settings.entries(), self.check.entries()]
    }
    fn from_raw(raw: RawRow) -> Result<Self> {
        Ok(LocalCheck {
            settings: raw.section(Self::TABLE, 0)?,
            check: raw.section(Self::TABLE, 1)?,
            name: raw.name,
            comments: raw.comments,
        })
    }
    fn fragment(&self, _: &Resolved) -> Config {
        Config {
            local_checks: vec![self.clone()],
            ..Config::default()
        }
    }
}

impl sealed::Sealed for VrrpInstance {
    const TABLE: &'static Table = &VRRP_INSTANCES;
    fn name(&self) -> &str {
        &self.name
    }
    fn comments(&self) -> &Comments {
        &self.comments
    }
    fn check(&self, what: &str) -> Result<()> {
        check_writable::<VrrpSettings>(what, &self.settings)
    }
    fn sections(&self) -> Vec<Vec<(&'static str, String)>> {
        vec![self.settings.entries()]
    }
    fn from_raw(raw: RawRow) -> Result<Self> {
        Ok(VrrpInstance {
            settings: raw.section(Self::TABLE, 0)?,
            name: raw.name,
            comments: raw.comments,
        })
    }
    fn fragment(&self, _: &Resolved) -> Config {
        Config {
            vrrp: vec![self.clone()],
            ..Config::default()
        }
    }
}

// ---- SQL, written once for every kind ----

/// Binds the values of the filter built by [`load_rows`].
fn bind_filter(q: Query<'_>, rows: Rows, id: Option<i64>) -> Query<'_> {
    let q = rows.bind(q);
    match id {
        Some(id) => q.bind(id),
        None => q,
    }
}

/// Reads the `rows` of `table` (or only row `id` of them), in order, with their
/// keyword rows.
async fn load_rows(
    conn: &mut SqliteConnection,
    table: &Table,
    rows: Rows,
    id: Option<i64>,
) -> Result<Vec<RawRow>> {
    let mut filter = rows.condition();
    if id.is_some() {
        filter.push_str(" AND e.id = ?");
    }
    let parent = table
        .parent_column
        .map_or_else(|| "NULL".to_string(), |c| format!("e.{c}"));
    let sql = format!(
        "SELECT e.id, {parent} AS parent, e.version, e.name, e.comments FROM {t} e \
         WHERE 1 = 1{filter} ORDER BY e.position, e.id",
        t = table.name
    );
    let found: Vec<SqliteRow> = bind_filter(sqlx::query(&sql), rows, id)
        .fetch_all(&mut *conn)
        .await?;

    let mut sections: Vec<HashMap<i64, Vec<(String, String)>>> = Vec::new();
    for section in table.sections {
        let sql = format!(
            "SELECT k.owner_id, k.keyword, k.value FROM {section} k \
             JOIN {t} e ON e.id = k.owner_id WHERE 1 = 1{filter}",
            t = table.name
        );
        let mut by_owner: HashMap<i64, Vec<(String, String)>> = HashMap::new();
        for row in bind_filter(sqlx::query(&sql), rows, id)
            .fetch_all(&mut *conn)
            .await?
        {
            by_owner
                .entry(row.try_get("owner_id")?)
                .or_default()
                .push((row.try_get("keyword")?, row.try_get("value")?));
        }
        sections.push(by_owner);
    }

    found
        .iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            let name: String = row.try_get("name")?;
            if let Some(reason) = name_problem(&name) {
                return Err(StorageError::Corrupt {
                    table: table.name.to_string(),
                    row: format!("{id} ({name:?})"),
                    keyword: "name".into(),
                    message: reason.to_string(),
                });
            }
            let comments = comments_from_json(&row.try_get::<String, _>("comments")?)
                .map_err(|bad| bad.corrupt(table.name, format!("{id} (`{name}`)")))?;
            Ok(RawRow {
                id,
                parent: row.try_get("parent")?,
                version: row.try_get("version")?,
                name,
                comments,
                sections: sections
                    .iter_mut()
                    .map(|s| s.remove(&id).unwrap_or_default())
                    .collect(),
            })
        })
        .collect()
}

/// The blocks in `rows` (or only block `id` of them), in order, each with its real servers.
pub(crate) async fn load<B: Block>(
    conn: &mut SqliteConnection,
    rows: Rows,
    id: Option<i64>,
) -> Result<Vec<Stored<B>>> {
    let mut out = load_rows(conn, B::TABLE, rows, id)
        .await?
        .into_iter()
        .map(stored::<B>)
        .collect::<Result<Vec<_>>>()?;
    if B::HAS_SERVERS {
        let server_rows = match id {
            Some(id) => Rows::Parent(id),
            None => Rows::All,
        };
        let mut servers: HashMap<i64, Vec<RealServer>> = HashMap::new();
        for raw in load_rows(conn, &REAL_SERVERS, server_rows, None).await? {
            let parent = raw.parent.unwrap_or_default();
            servers
                .entry(parent)
                .or_default()
                .push(RealServer::from_raw(raw)?);
        }
        for s in &mut out {
            if let Some(list) = s.item.servers_mut() {
                *list = servers.remove(&s.id).unwrap_or_default();
            }
        }
    }
    Ok(out)
}

/// The blocks in `rows`, in order, without their real servers.
pub(crate) async fn load_rows_only<B: Block>(
    conn: &mut SqliteConnection,
    rows: Rows,
) -> Result<Vec<Stored<B>>> {
    load_rows(conn, B::TABLE, rows, None)
        .await?
        .into_iter()
        .map(stored::<B>)
        .collect()
}

fn stored<B: Block>(raw: RawRow) -> Result<Stored<B>> {
    Ok(Stored {
        id: raw.id,
        version: raw.version,
        item: B::from_raw(raw)?,
    })
}

/// Every real server with its id and version, by the id of its virtual server.
pub(crate) async fn servers_by_parent(
    conn: &mut SqliteConnection,
) -> Result<HashMap<i64, Vec<Stored<RealServer>>>> {
    let mut out: HashMap<i64, Vec<Stored<RealServer>>> = HashMap::new();
    for raw in load_rows(conn, &REAL_SERVERS, Rows::All, None).await? {
        let parent = raw.parent.unwrap_or_default();
        out.entry(parent)
            .or_default()
            .push(stored::<RealServer>(raw)?);
    }
    Ok(out)
}

async fn load_one<B: Block>(
    conn: &mut SqliteConnection,
    r: &Resolved,
    id: i64,
) -> Result<Stored<B>> {
    load::<B>(conn, r.rows, Some(id))
        .await?
        .pop()
        .ok_or_else(|| missing(B::TABLE, id))
}

/// Replaces the keyword rows of block `id` (`fresh`: a block just inserted, which
/// has none yet). One statement per section: a whole site's import or received
/// configuration writes tens of thousands of rows.
async fn write_sections(
    conn: &mut SqliteConnection,
    table: &Table,
    id: i64,
    sections: Vec<Vec<(&'static str, String)>>,
    fresh: bool,
) -> Result<()> {
    for (section, entries) in table.sections.iter().zip(sections) {
        if !fresh {
            sqlx::query(&format!("DELETE FROM {section} WHERE owner_id = ?"))
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        if entries.is_empty() {
            continue;
        }
        let rows = vec!["(?, ?, ?)"; entries.len()].join(", ");
        let insert = format!("INSERT INTO {section} (owner_id, keyword, value) VALUES {rows}");
        let mut q = sqlx::query(&insert);
        for (keyword, value) in entries {
            q = q.bind(id).bind(keyword).bind(value);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts a block at `position` of the list `r`, with its real servers; returns its id.
pub(crate) async fn insert<B: Block>(
    conn: &mut SqliteConnection,
    r: &Resolved,
    position: i64,
    item: &B,
) -> Result<i64> {
    let table = B::TABLE;
    check_name(table, r, item.name())?;
    let object = r.object(table, item.name());
    item.check(&object)?;
    let (column, value) = match r.rows.column() {
        Some(c) => (format!(", {c}"), ", ?"),
        None => (String::new(), ""),
    };
    let sql = format!(
        "INSERT INTO {t} (position, name, comments{column}) VALUES (?, ?, ?{value})",
        t = table.name
    );
    let q = sqlx::query(&sql)
        .bind(position)
        .bind(item.name())
        .bind(comments_to_json(item.comments()));
    let id = r
        .rows
        .bind(q)
        .execute(&mut *conn)
        .await
        .map_err(|e| StorageError::from_write(e, || object.clone()))?
        .last_insert_rowid();
    write_sections(conn, table, id, item.sections(), true).await?;

    if !item.servers().is_empty() {
        let kind = match r.rows {
            Rows::Kind(kind) => kind,
            _ => VIRTUAL,
        };
        let children = Resolved {
            rows: Rows::Parent(id),
            parent: Some((kind.to_string(), item.name().to_string())),
        };
        for (position, server) in (0..).zip(item.servers()) {
            // Boxed: the future of a recursive async fn must have a known size.
            Box::pin(insert::<RealServer>(conn, &children, position, server)).await?;
        }
    }
    Ok(id)
}

/// The configuration's block lists, for replacing them whole.
pub(crate) async fn insert_all<B: Block>(
    conn: &mut SqliteConnection,
    rows: Rows,
    items: &[B],
) -> Result<()> {
    let r = resolve(conn, rows).await?;
    for (position, item) in (0..).zip(items) {
        insert(conn, &r, position, item).await?;
    }
    Ok(())
}

/// The audit text of a block: its `lvs.cf` fragment.
fn audit_text<B: Block>(r: &Resolved, item: &B) -> String {
    render(&item.fragment(r))
}

/// One list of blocks of one kind: the virtual servers, the real servers of a virtual
/// server, the floating addresses or the local checks. Obtained from [`Store`].
///
/// Each write is one transaction with its audit entry. Updates and deletes take the
/// version the caller read and fail with [`StorageError::Conflict`] if the block was
/// saved since.
pub struct Blocks<'s, B> {
    store: &'s Store,
    rows: Rows,
    kind: PhantomData<fn() -> B>,
}

impl<'s, B: Block> Blocks<'s, B> {
    pub(crate) fn new(store: &'s Store, rows: Rows) -> Self {
        Blocks {
            store,
            rows,
            kind: PhantomData,
        }
    }

    /// All blocks of the list, in order. Virtual servers come with their real servers.
    pub async fn list(&self) -> Result<Vec<Stored<B>>> {
        let mut tx = self.store.begin_read().await?;
        resolve(&mut tx, self.rows).await?;
        let out = load(&mut tx, self.rows, None).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// One block by id ([`StorageError::NotFound`] if it is not in this list).
    pub async fn get(&self, id: i64) -> Result<Stored<B>> {
        let mut tx = self.store.begin_read().await?;
        let r = resolve(&mut tx, self.rows).await?;
        let out = load_one(&mut tx, &r, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Adds a block at the end of the list. A virtual server is created with its real
    /// servers. [`StorageError::Duplicate`] if the name is taken.
    pub async fn create(&self, item: &B, actor: &Actor) -> Result<Stored<B>> {
        let mut tx = self.store.begin_write().await?;
        let r = resolve(&mut tx, self.rows).await?;
        let table = B::TABLE;
        let sql = format!(
            "SELECT COALESCE(MAX(e.position) + 1, 0) FROM {t} e WHERE 1 = 1{filter}",
            t = table.name,
            filter = self.rows.condition()
        );
        let position: i64 = self
            .rows
            .bind(sqlx::query(&sql))
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let id = insert(&mut tx, &r, position, item).await?;
        audit::append(
            &mut tx,
            self.store.now(),
            actor,
            action::CREATE,
            &r.object(table, item.name()),
            None,
            Some(&audit_text(&r, item)),
        )
        .await?;
        tx.commit().await?;
        Ok(Stored {
            id,
            version: 1,
            item: item.clone(),
        })
    }

    /// Replaces block `id` with `item`, if it is still at `expected_version`; returns
    /// the new version. A virtual server's `servers` are not touched: real servers have
    /// their own rows, versions and operations ([`Store::real_servers`]).
    pub async fn update(
        &self,
        id: i64,
        expected_version: i64,
        item: &B,
        actor: &Actor,
    ) -> Result<i64> {
        self.update_with(id, expected_version, actor, |old| {
            let servers = old.servers_mut().map(std::mem::take);
            *old = item.clone();
            if let (Some(kept), Some(list)) = (servers, old.servers_mut()) {
                *list = kept;
            }
        })
        .await
    }

    /// Edits block `id` in place, if it is still at `expected_version`; returns the new
    /// version (unchanged when `edit` changed nothing: nothing is written or logged).
    /// `edit` must not change a virtual server's `servers`.
    pub async fn update_with(
        &self,
        id: i64,
        expected_version: i64,
        actor: &Actor,
        edit: impl FnOnce(&mut B),
    ) -> Result<i64> {
        let table = B::TABLE;
        let mut tx = self.store.begin_write().await?;
        let r = resolve(&mut tx, self.rows).await?;
        let before = load_one::<B>(&mut tx, &r, id).await?;
        let object = r.object(table, before.item.name());
        if before.version != expected_version {
            return Err(StorageError::Conflict {
                what: object,
                expected: expected_version,
                found: before.version,
            });
        }
        let mut item = before.item.clone();
        edit(&mut item);
        if item.servers() != before.item.servers() {
            return Err(StorageError::Invalid {
                what: object,
                message: "real servers are changed one by one, not with their virtual server"
                    .into(),
            });
        }
        if item == before.item {
            return Ok(before.version);
        }
        check_name(table, &r, item.name())?;
        item.check(&object)?;
        let sql = format!(
            "UPDATE {t} SET name = ?, comments = ?, version = version + 1 \
             WHERE id = ? AND version = ?",
            t = table.name
        );
        let done = sqlx::query(&sql)
            .bind(item.name())
            .bind(comments_to_json(item.comments()))
            .bind(id)
            .bind(expected_version)
            .execute(&mut *tx)
            .await
            .map_err(|e| StorageError::from_write(e, || r.object(table, item.name())))?;
        // The write lock is held since BEGIN IMMEDIATE, so the version cannot have moved;
        // checked anyway rather than assumed.
        if done.rows_affected() != 1 {
            return Err(missing(table, id));
        }
        write_sections(&mut tx, table, id, item.sections(), false).await?;
        audit::append(
            &mut tx,
            self.store.now(),
            actor,
            action::UPDATE,
            &object,
            Some(&audit_text(&r, &before.item)),
            Some(&audit_text(&r, &item)),
        )
        .await?;
        tx.commit().await?;
        Ok(expected_version + 1)
    }

    /// Deletes block `id` (a virtual server with its real servers), if it is still at
    /// `expected_version`.
    pub async fn delete(&self, id: i64, expected_version: i64, actor: &Actor) -> Result<()> {
        let table = B::TABLE;
        let mut tx = self.store.begin_write().await?;
        let r = resolve(&mut tx, self.rows).await?;
        let before = load_one::<B>(&mut tx, &r, id).await?;
        let object = r.object(table, before.item.name());
        if before.version != expected_version {
            return Err(StorageError::Conflict {
                what: object,
                expected: expected_version,
                found: before.version,
            });
        }
        // Keyword rows and real servers go with it (ON DELETE CASCADE).
        sqlx::query(&format!("DELETE FROM {} WHERE id = ?", table.name))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            self.store.now(),
            actor,
            action::DELETE,
            &object,
            Some(&audit_text(&r, &before.item)),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Puts the list in the order of `ids`, which must name every block of the list
    /// exactly once ([`StorageError::OrderChanged`] otherwise: one was added or deleted
    /// since the caller read the list).
    pub async fn reorder(&self, ids: &[i64], actor: &Actor) -> Result<()> {
        let table = B::TABLE;
        let mut tx = self.store.begin_write().await?;
        let r = resolve(&mut tx, self.rows).await?;
        let sql = format!(
            "SELECT e.id, e.name FROM {t} e WHERE 1 = 1{filter} ORDER BY e.position, e.id",
            t = table.name,
            filter = self.rows.condition()
        );
        let current: Vec<(i64, String)> = self
            .rows
            .bind(sqlx::query(&sql))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let names: HashMap<i64, &str> = current.iter().map(|(i, n)| (*i, n.as_str())).collect();
        let mut wanted = ids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.len() != ids.len()
            || wanted.len() != current.len()
            || !wanted.iter().all(|i| names.contains_key(i))
        {
            return Err(StorageError::OrderChanged {
                what: r.list(table),
            });
        }
        if current.iter().map(|(i, _)| *i).eq(ids.iter().copied()) {
            return Ok(());
        }
        let update = format!("UPDATE {} SET position = ? WHERE id = ?", table.name);
        for (position, id) in (0i64..).zip(ids) {
            sqlx::query(&update)
                .bind(position)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let before: Vec<&str> = current.iter().map(|(_, n)| n.as_str()).collect();
        let after: Vec<&str> = ids.iter().map(|i| names[i]).collect();
        audit::append(
            &mut tx,
            self.store.now(),
            actor,
            action::REORDER,
            &r.list(table),
            Some(&before.join("\n")),
            Some(&after.join("\n")),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, value::Host};

    const EXAMPLE: &str = include_str!("../../tests/data/piranha_example.lvs.cf");

    fn alice() -> Actor {
        Actor::new("alice", Some("192.0.2.10".into()))
    }

    async fn example_store() -> Store {
        let store = Store::open_in_memory().await.unwrap();
        let config = parse(EXAMPLE).unwrap().config;
        store.replace_config(&config, &alice()).await.unwrap();
        store
    }

    fn server(name: &str, address: &str) -> RealServer {
        let mut s = RealServer {
            name: name.into(),
            ..RealServer::default()
        };
        s.settings.address = Some(Host::Ip(address.parse().unwrap()));
        s
    }

    async fn last_audit(store: &Store) -> crate::storage::AuditEntry {
        store.audit().list(1, 0).await.unwrap().remove(0)
    }

    #[tokio::test]
    async fn real_servers_are_created_updated_and_deleted_with_versions_and_audit() {
        let store = example_store().await;
        let www = store.virtual_servers().list().await.unwrap().remove(0);
        let servers = store.real_servers(www.id);

        let web4 = servers
            .create(&server("web4", "192.168.50.24"), &alice())
            .await
            .unwrap();
        assert_eq!(web4.version, 1);
        let names: Vec<_> = servers
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.item.name)
            .collect();
        assert_eq!(names, ["web1", "web2", "web3", "web4"]);
        let entry = last_audit(&store).await;
        assert_eq!(
            (entry.action.as_str(), entry.object.as_str()),
            (action::CREATE, "virtual www server web4")
        );
        assert_eq!(entry.actor, "alice");
        assert_eq!(entry.source.as_deref(), Some("192.0.2.10"));
        assert!(entry
            .after
            .as_deref()
            .unwrap()
            .contains("server web4 {\n        address = 192.168.50.24"));

        let mut edited = web4.item.clone();
        edited.settings.weight = Some(5);
        let v2 = servers
            .update(web4.id, web4.version, &edited, &alice())
            .await
            .unwrap();
        assert_eq!(v2, 2);
        assert_eq!(servers.get(web4.id).await.unwrap().item, edited);
        let entry = last_audit(&store).await;
        assert_eq!(entry.action, action::UPDATE);
        assert!(!entry.before.as_deref().unwrap().contains("weight"));
        assert!(entry.after.as_deref().unwrap().contains("weight = 5"));

        // A second editor still holding version 1 is told, not silently overwritten.
        let err = servers
            .update(web4.id, web4.version, &web4.item, &alice())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StorageError::Conflict { what, expected: 1, found: 2 }
                if what == "virtual www server web4"),
            "{err}"
        );
        let err = servers.delete(web4.id, 1, &alice()).await.unwrap_err();
        assert!(matches!(err, StorageError::Conflict { .. }), "{err}");

        servers.delete(web4.id, v2, &alice()).await.unwrap();
        assert!(matches!(
            servers.get(web4.id).await,
            Err(StorageError::NotFound { .. })
        ));
        let entry = last_audit(&store).await;
        assert_eq!(entry.action, action::DELETE);
        assert!(entry.before.as_deref().unwrap().contains("weight = 5"));
        assert_eq!(entry.after, None);
    }

    #[tokio::test]
    async fn names_are_unique_within_their_parent_only() {
        let store = example_store().await;
        let list = store.virtual_servers().list().await.unwrap();
        let (www, dns) = (&list[0], &list[2]);
        let err = store
            .real_servers(www.id)
            .create(&server("web1", "192.168.50.99"), &alice())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StorageError::Duplicate { what } if what == "virtual www server web1"),
            "{err}"
        );
        // The same name under another virtual server is fine.
        store
            .real_servers(dns.id)
            .create(&server("web1", "192.168.50.99"), &alice())
            .await
            .unwrap();
        // Renaming onto a taken name is a duplicate too.
        let mut renamed = dns.item.clone();
        renamed.name = "www".into();
        let err = store
            .virtual_servers()
            .update(dns.id, dns.version, &renamed, &alice())
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Duplicate { .. }), "{err}");
    }

    #[tokio::test]
    async fn names_follow_the_models_rule() {
        let store = example_store().await;
        let www = store.virtual_servers().list().await.unwrap().remove(0);
        let servers = store.real_servers(www.id);
        let entries = store.audit().count().await.unwrap();
        for bad in ["", "two\nlines", "tab\there", "{", "}"] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
            let err = servers
                .create(&server(bad, "192.0.2.1"), &alice())
                .await
                .unwrap_err();
            assert!(
                matches!(&err, StorageError::Invalid { what, message }
                    if *what == format!("virtual www server {bad:?}")
                        && message == name_problem(bad).unwrap()),
                "{bad:?}: {err}"
            );
            assert!(err.is_invalid_input());
            // Renaming onto it is refused too, and so is a whole configuration with it.
            let err = store
                .virtual_servers()
                .update_with(www.id, www.version, &alice(), |v| v.name = bad.into())
                .await
                .unwrap_err();
            assert!(
                matches!(err, StorageError::Invalid { .. }),
                "{bad:?}: {err}"
            );
            let mut config = store.load_config().await.unwrap();
            config.floating.push(FloatingAddress {
                name: bad.into(),
                ..FloatingAddress::default()
            });
            let err = store.replace_config(&config, &alice()).await.unwrap_err();
            assert!(
                matches!(err, StorageError::Invalid { .. }),
                "{bad:?}: {err}"
            );
        }
        assert_eq!(
            store.audit().count().await.unwrap(),
            entries,
            "nothing written"
        );

        // Any other single token is a name, quoted when it has to be, as Piranha has it.
        for good in ["web 4", "wéb#4", "it's", "say \"hi\"", "{x", "x}"] {
            assert_eq!(name_problem(good), None, "{good:?}");
            let s = servers.create(&server(good, "192.0.2.1"), &alice()).await;
            assert_eq!(s.unwrap().item.name, good);
        }
        let config = store.load_config().await.unwrap();
        assert_eq!(parse(&render(&config)).unwrap().config, config);
    }

    #[tokio::test]
    async fn a_name_damaged_by_hand_is_corrupt() {
        let store = example_store().await;
        sqlx::query("UPDATE real_servers SET name = 'web' || char(10) || '2' WHERE name = 'web2'")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = store.load_config().await.unwrap_err();
        assert!(
            matches!(&err, StorageError::Corrupt { table, row, keyword, .. }
                if table == "real_servers" && row.contains(r#""web\n2""#) && keyword == "name"),
            "{err}"
        );
        assert!(!err.is_invalid_input());
    }

    #[tokio::test]
    async fn ids_are_checked_against_their_list() {
        let store = example_store().await;
        let list = store.virtual_servers().list().await.unwrap();
        let web1 = store
            .real_servers(list[0].id)
            .list()
            .await
            .unwrap()
            .remove(0);
        // A real server of www is not one of dns's.
        assert!(matches!(
            store.real_servers(list[2].id).get(web1.id).await,
            Err(StorageError::NotFound { .. })
        ));
        // A virtual server that does not exist has no list of real servers.
        let err = store
            .real_servers(9999)
            .create(&server("x", "192.0.2.1"), &alice())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StorageError::NotFound { what } if what == "virtual server #9999"),
            "{err}"
        );
        // Virtual servers are not failover services.
        assert!(matches!(
            store.failover_services().get(list[0].id).await,
            Err(StorageError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn updating_a_virtual_server_leaves_its_real_servers_alone() {
        let store = example_store().await;
        let www = store.virtual_servers().list().await.unwrap().remove(0);
        assert_eq!(www.item.servers.len(), 3);
        let mut edited = www.item.clone();
        edited.servers.clear();
        edited.settings.persistent = Some(60);
        store
            .virtual_servers()
            .update(www.id, www.version, &edited, &alice())
            .await
            .unwrap();
        let again = store.virtual_servers().get(www.id).await.unwrap();
        assert_eq!(again.item.servers, www.item.servers);
        assert_eq!(again.item.settings.persistent, Some(60));

        let err = store
            .virtual_servers()
            .update_with(www.id, again.version, &alice(), |v| {
                v.servers.pop();
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Invalid { .. }), "{err}");
    }

    #[tokio::test]
    async fn an_unchanged_save_is_not_a_new_version() {
        let store = example_store().await;
        let www = store.virtual_servers().list().await.unwrap().remove(0);
        let entries = store.audit().count().await.unwrap();
        let v = store
            .virtual_servers()
            .update(www.id, www.version, &www.item, &alice())
            .await
            .unwrap();
        assert_eq!(v, www.version);
        assert_eq!(store.audit().count().await.unwrap(), entries);
    }

    #[tokio::test]
    async fn deleting_a_virtual_server_deletes_its_real_servers_and_keywords() {
        let store = example_store().await;
        let www = store.virtual_servers().list().await.unwrap().remove(0);
        store
            .virtual_servers()
            .delete(www.id, www.version, &alice())
            .await
            .unwrap();
        for (table, column) in [
            ("real_servers", "virtual_server_id"),
            ("virtual_server_settings", "owner_id"),
            ("monitoring_scripts", "owner_id"),
        ] {
            let n: i64 =
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?"))
                    .bind(www.id)
                    .fetch_one(&store.pool)
                    .await
                    .unwrap();
            assert_eq!(n, 0, "{table}");
        }
        let orphans: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM real_server_settings \
             WHERE owner_id NOT IN (SELECT id FROM real_servers)",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(orphans, 0);
        let entry = last_audit(&store).await;
        assert_eq!(entry.object, "virtual www");
        assert!(entry.before.as_deref().unwrap().contains("server web3 {"));
    }

    #[tokio::test]
    async fn reorder_takes_the_whole_list() {
        let store = example_store().await;
        let vs = store.virtual_servers();
        let ids: Vec<i64> = vs.list().await.unwrap().iter().map(|s| s.id).collect();
        let reversed: Vec<i64> = ids.iter().rev().copied().collect();
        vs.reorder(&reversed, &alice()).await.unwrap();
        let names: Vec<_> = vs
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.item.name)
            .collect();
        assert_eq!(names, ["dns", "www_tls", "www"]);
        let config = store.load_config().await.unwrap();
        assert_eq!(config.virtuals[0].name, "dns");
        let entry = last_audit(&store).await;
        assert_eq!(
            (entry.action.as_str(), entry.object.as_str()),
            (action::REORDER, "virtual servers")
        );
        assert_eq!(entry.after.as_deref(), Some("dns\nwww_tls\nwww"));

        // Missing, repeated or foreign ids: the list changed under the caller.
        for bad in [
            &ids[..2],
            &[ids[0], ids[0], ids[1]][..],
            &[ids[0], ids[1], 9999][..],
        ] {
            let err = vs.reorder(bad, &alice()).await.unwrap_err();
            assert!(
                matches!(err, StorageError::OrderChanged { .. }),
                "{bad:?}: {err}"
            );
        }
        // Creating appends at the end, after a reorder too.
        let mut extra = config.virtuals[0].clone();
        extra.name = "extra".into();
        vs.create(&extra, &alice()).await.unwrap();
        let last = vs.list().await.unwrap().pop().unwrap();
        assert_eq!(last.item, extra);
    }

    #[tokio::test]
    async fn ids_are_never_reused_across_a_replace() {
        let store = example_store().await;
        let before: Vec<i64> = store
            .virtual_servers()
            .list()
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        let config = store.load_config().await.unwrap();
        store.replace_config(&config, &alice()).await.unwrap();
        let after = store.virtual_servers().list().await.unwrap();
        assert!(after
            .iter()
            .all(|s| !before.contains(&s.id) && s.version == 1));
        // An edit begun before the replace cannot land on a different block.
        let err = store
            .virtual_servers()
            .update(before[0], 1, &after[0].item, &alice())
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
    }

    #[tokio::test]
    async fn floating_addresses_and_local_checks_share_the_same_operations() {
        let store = Store::open_in_memory().await.unwrap();
        let text = "floating nginx {\n    active = 1\n    address = 2001:db8::50 eth0\n}\n\
                    local_check alive {\n    port = 80\n    check = http\n    timeout = 0.5\n}\n";
        let config = parse(text).unwrap().config;
        let f = store
            .floating_addresses()
            .create(&config.floating[0], &alice())
            .await
            .unwrap();
        let l = store
            .local_checks()
            .create(&config.local_checks[0], &alice())
            .await
            .unwrap();
        assert_eq!(store.load_config().await.unwrap(), config);
        assert_eq!(last_audit(&store).await.object, "local_check alive");

        let mut g = f.item.clone();
        g.settings.active = Some(false);
        store
            .floating_addresses()
            .update(f.id, f.version, &g, &alice())
            .await
            .unwrap();
        assert_eq!(last_audit(&store).await.object, "floating nginx");
        store
            .local_checks()
            .delete(l.id, l.version, &alice())
            .await
            .unwrap();
        let now = store.load_config().await.unwrap();
        assert_eq!(now.floating, [g]);
        assert!(now.local_checks.is_empty());
    }
}

//! The configuration as a whole: load it, replace it (import, rollback), and the global
//! settings page. The blocks' own operations are in [`super::blocks`].

use sqlx::SqliteConnection;

use crate::config::{
    render, CheckSettings, Comments, Config, FloatingAddress, GlobalSettings, LocalCheck,
    RealServer, VirtualServer, VrrpInstance,
};

use super::audit::{self, action};
use super::blocks::{
    insert_all, load, load_rows_only, servers_by_parent, Rows, Stored, FAILOVER, VIRTUAL,
};
use super::error::{Result, StorageError};
use super::keywords::{check_writable, comments_from_json, comments_to_json, decode};
use super::{Actor, Store};

/// The global keywords with their comments and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalRecord {
    /// Incremented by every saved change of the global settings (and by a replace).
    pub version: i64,
    pub settings: GlobalSettings,
    /// [`Config::comments`]: comments of the global keywords and the file's last lines.
    pub comments: Comments,
}

const GLOBAL: &str = "global settings";

/// A virtual server with its real servers, each with its id and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVirtual {
    /// The virtual server; its `item.servers` are those of `servers`, in order.
    pub virtual_server: Stored<VirtualServer>,
    pub servers: Vec<Stored<RealServer>>,
}

/// The whole stored configuration with every block's id and version, read in one
/// snapshot, and the change counter it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Store::change_counter`].
    pub change: i64,
    pub global: GlobalRecord,
    pub virtuals: Vec<StoredVirtual>,
    pub failovers: Vec<Stored<VirtualServer>>,
    pub floating: Vec<Stored<FloatingAddress>>,
    pub local_checks: Vec<Stored<LocalCheck>>,
    pub vrrp: Vec<Stored<VrrpInstance>>,
}

impl Snapshot {
    /// The configuration alone.
    pub fn config(&self) -> Config {
        Config {
            global: self.global.settings.clone(),
            comments: self.global.comments.clone(),
            floating: self.floating.iter().map(|s| s.item.clone()).collect(),
            local_checks: self.local_checks.iter().map(|s| s.item.clone()).collect(),
            vrrp: self.vrrp.iter().map(|s| s.item.clone()).collect(),
            virtuals: self
                .virtuals
                .iter()
                .map(|v| v.virtual_server.item.clone())
                .collect(),
            failovers: self.failovers.iter().map(|s| s.item.clone()).collect(),
        }
    }
}

async fn load_global(conn: &mut SqliteConnection) -> Result<GlobalRecord> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT keyword, value FROM settings ORDER BY keyword")
            .fetch_all(&mut *conn)
            .await?;
    let settings = decode(&rows).map_err(|bad| {
        let row = format!("`{}`", bad.keyword);
        bad.corrupt("settings", row)
    })?;
    let (version, comments): (i64, String) =
        sqlx::query_as("SELECT version, comments FROM config_meta WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
    let comments = comments_from_json(&comments).map_err(|bad| bad.corrupt("config_meta", "1"))?;
    Ok(GlobalRecord {
        version,
        settings,
        comments,
    })
}

/// Stores the global keywords and comments, and bumps their version.
async fn write_global(
    conn: &mut SqliteConnection,
    settings: &GlobalSettings,
    comments: &Comments,
) -> Result<()> {
    check_writable(GLOBAL, settings)?;
    sqlx::query("DELETE FROM settings")
        .execute(&mut *conn)
        .await?;
    for (keyword, value) in settings.entries() {
        sqlx::query("INSERT INTO settings (keyword, value) VALUES (?, ?)")
            .bind(keyword)
            .bind(value)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("UPDATE config_meta SET version = version + 1, comments = ? WHERE id = 1")
        .bind(comments_to_json(comments))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn items<T>(stored: Vec<super::Stored<T>>) -> Vec<T> {
    stored.into_iter().map(|s| s.item).collect()
}

async fn load_config(conn: &mut SqliteConnection) -> Result<Config> {
    let global = load_global(conn).await?;
    Ok(Config {
        global: global.settings,
        comments: global.comments,
        floating: items(load::<FloatingAddress>(conn, Rows::All, None).await?),
        local_checks: items(load::<LocalCheck>(conn, Rows::All, None).await?),
        vrrp: items(load::<VrrpInstance>(conn, Rows::All, None).await?),
        virtuals: items(load::<VirtualServer>(conn, Rows::Kind(VIRTUAL), None).await?),
        failovers: items(load::<VirtualServer>(conn, Rows::Kind(FAILOVER), None).await?),
    })
}

/// The audit text of the global settings: their `lvs.cf` lines.
fn global_text(settings: &GlobalSettings, comments: &Comments) -> String {
    render(&Config {
        global: settings.clone(),
        comments: comments.clone(),
        ..Config::default()
    })
}

/// The stored configuration's version as a whole: SHA-256 of its rendering (comments
/// included), the first 16 bytes in hex.
pub fn config_digest(config: &Config) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(render(config).as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// The stored configuration, read in one snapshot.
    pub async fn load_config(&self) -> Result<Config> {
        let mut tx = self.begin_read().await?;
        let config = load_config(&mut tx).await?;
        tx.commit().await?;
        Ok(config)
    }

    /// Replaces the whole stored configuration (an import, a rollback) in one
    /// transaction with its audit entry: on any error nothing has changed.
    ///
    /// Every block gets a new id and version 1, so edits begun before the replace fail
    /// with [`StorageError::NotFound`] rather than land on a different block. The
    /// configuration is stored as given: validating it is the caller's business, but
    /// names must be unique within their parent ([`StorageError::Duplicate`]) and every
    /// value must read back unchanged ([`StorageError::Invalid`]).
    pub async fn replace_config(&self, config: &Config, actor: &Actor) -> Result<()> {
        let mut tx = self.begin_write().await?;
        replace_in(&mut tx, self.now(), config, actor).await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Store::replace_config`], if the stored configuration is still the one whose
    /// [`config_digest`] is `expected` (read in the same transaction, so no edit can
    /// land between the check and the replace); `Ok(Err(current digest))` otherwise,
    /// with nothing changed.
    pub async fn replace_config_if(
        &self,
        config: &Config,
        actor: &Actor,
        expected: &str,
    ) -> Result<std::result::Result<(), String>> {
        let mut tx = self.begin_write().await?;
        let current = config_digest(&load_config(&mut tx).await?);
        if current != expected {
            return Ok(Err(current));
        }
        replace_in(&mut tx, self.now(), config, actor).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// A configuration received from the peer: the stored configuration becomes
    /// `config` and `text` (its rendering) is recorded as a revision, in one
    /// transaction, so the admin UI never shows the older one as the one to apply;
    /// around `write` (the file the revision describes), as
    /// [`Revisions::record_around`](super::Revisions::record_around) does: a database
    /// that cannot take it fails before anything is written, a failed write leaves
    /// nothing stored (`Ok(Err(e))`), and only a failed commit leaves a written file
    /// without its record, for the caller to put back.
    #[allow(clippy::too_many_arguments)]
    pub async fn receive<E: Send + 'static>(
        &self,
        config: &Config,
        text: &str,
        serial_no: u32,
        actor: &Actor,
        comment: &str,
        lineage: &super::revisions::Lineage,
        write: impl FnOnce() -> std::result::Result<(), E> + Send + 'static,
    ) -> Result<std::result::Result<super::revisions::Revision, E>> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        replace_in(&mut tx, now, config, actor).await?;
        let rev =
            super::revisions::record_in(&mut tx, now, text, serial_no, actor, comment, lineage)
                .await?;
        if let Err(e) = tokio::task::spawn_blocking(write).await? {
            return Ok(Err(e));
        }
        tx.commit().await?;
        Ok(Ok(rev))
    }

    /// A number that grows with every change written to the database (configuration,
    /// users, logins: every write appends an audit entry in its transaction), so that
    /// a reader can tell cheaply whether what it holds is still current.
    pub async fn change_counter(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM audit_log")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Everything [`Store::load_config`] reads, with the ids and versions of the
    /// blocks, in one snapshot.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut tx = self.begin_read().await?;
        let change: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM audit_log")
            .fetch_one(&mut *tx)
            .await?;
        let global = load_global(&mut tx).await?;
        let mut servers = servers_by_parent(&mut tx).await?;
        let virtuals = load_rows_only::<VirtualServer>(&mut tx, Rows::Kind(VIRTUAL))
            .await?
            .into_iter()
            .map(|mut v| {
                let list = servers.remove(&v.id).unwrap_or_default();
                v.item.servers = list.iter().map(|s| s.item.clone()).collect();
                StoredVirtual {
                    virtual_server: v,
                    servers: list,
                }
            })
            .collect();
        let mut failovers = load_rows_only::<VirtualServer>(&mut tx, Rows::Kind(FAILOVER)).await?;
        for f in &mut failovers {
            f.item.servers = servers
                .remove(&f.id)
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.item)
                .collect();
        }
        let floating = load::<FloatingAddress>(&mut tx, Rows::All, None).await?;
        let local_checks = load::<LocalCheck>(&mut tx, Rows::All, None).await?;
        let vrrp = load::<VrrpInstance>(&mut tx, Rows::All, None).await?;
        tx.commit().await?;
        Ok(Snapshot {
            change,
            global,
            virtuals,
            failovers,
            floating,
            local_checks,
            vrrp,
        })
    }

    /// The global keywords (Piranha GUI: GLOBAL SETTINGS and REDUNDANCY pages).
    pub async fn global_settings(&self) -> Result<GlobalRecord> {
        let mut tx = self.begin_read().await?;
        let global = load_global(&mut tx).await?;
        tx.commit().await?;
        Ok(global)
    }

    /// Replaces the global keywords and their comments, if they are still at
    /// `expected_version`; returns the new version (unchanged if nothing changed).
    pub async fn update_global_settings(
        &self,
        expected_version: i64,
        settings: &GlobalSettings,
        comments: &Comments,
        actor: &Actor,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let before = load_global(&mut tx).await?;
        if before.version != expected_version {
            return Err(StorageError::Conflict {
                what: GLOBAL.into(),
                expected: expected_version,
                found: before.version,
            });
        }
        if before.settings == *settings && before.comments == *comments {
            return Ok(before.version);
        }
        write_global(&mut tx, settings, comments).await?;
        audit::append(
            &mut tx,
            self.now(),
            actor,
            action::UPDATE,
            GLOBAL,
            Some(&global_text(&before.settings, &before.comments)),
            Some(&global_text(settings, comments)),
        )
        .await?;
        tx.commit().await?;
        Ok(before.version + 1)
    }

    /// Replaces the check keywords of virtual server `virtual_id` (Piranha GUI:
    /// MONITORING SCRIPTS), if it is still at `expected_version`; returns its new
    /// version.
    pub async fn update_monitoring_scripts(
        &self,
        virtual_id: i64,
        expected_version: i64,
        check: &CheckSettings,
        actor: &Actor,
    ) -> Result<i64> {
        self.virtual_servers()
            .update_with(virtual_id, expected_version, actor, |v| {
                v.check = check.clone();
            })
            .await
    }
}

/// [`Store::replace_config`] inside the caller's transaction.
async fn replace_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    now: i64,
    config: &Config,
    actor: &Actor,
) -> Result<()> {
    // A corrupt database must still be replaceable (that is how it gets repaired);
    // its audit entry then has no "before".
    let before = match load_config(tx).await {
        Ok(old) => Some(render(&old)),
        Err(e @ StorageError::Corrupt { .. }) => {
            tracing::warn!(error = %e, "replacing a configuration that does not load");
            None
        }
        Err(e) => return Err(e),
    };
    // Keyword rows and real servers go with their blocks (ON DELETE CASCADE).
    for table in [
        "virtual_servers",
        "floating_addresses",
        "local_checks",
        "vrrp_instances",
    ] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut **tx)
            .await?;
    }
    write_global(tx, &config.global, &config.comments).await?;
    insert_all(tx, Rows::All, &config.floating).await?;
    insert_all(tx, Rows::All, &config.local_checks).await?;
    insert_all(tx, Rows::All, &config.vrrp).await?;
    insert_all(tx, Rows::Kind(VIRTUAL), &config.virtuals).await?;
    insert_all(tx, Rows::Kind(FAILOVER), &config.failovers).await?;
    audit::append(
        tx,
        now,
        actor,
        action::REPLACE,
        "configuration",
        before.as_deref(),
        Some(&render(config)),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;
    use rand::SeedableRng;

    use super::*;
    use crate::config::parse;

    const EXAMPLE: &str = include_str!("../../tests/data/piranha_example.lvs.cf");

    fn example() -> Config {
        parse(EXAMPLE).unwrap().config
    }

    fn alice() -> Actor {
        Actor::new("alice", Some("192.0.2.10".into()))
    }

    async fn loaded(c: &Config) -> Store {
        let store = Store::open_in_memory().await.unwrap();
        store.replace_config(c, &alice()).await.unwrap();
        store
    }

    #[tokio::test]
    async fn an_empty_database_is_an_empty_configuration() {
        let store = Store::open_in_memory().await.unwrap();
        assert_eq!(store.load_config().await.unwrap(), Config::default());
        assert_eq!(store.global_settings().await.unwrap().version, 1);
    }

    #[tokio::test]
    async fn corrupt_keyword_is_reported_with_table_row_and_keyword() {
        let store = loaded(&example()).await;
        sqlx::query(
            "UPDATE virtual_server_settings SET value = 'maybe' \
             WHERE keyword = 'active' AND owner_id = \
               (SELECT id FROM virtual_servers WHERE name = 'dns')",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let err = store.load_config().await.unwrap_err();
        match &err {
            StorageError::Corrupt {
                table,
                row,
                keyword,
                ..
            } => {
                assert_eq!(table, "virtual_server_settings");
                assert!(row.contains("dns"), "{row}");
                assert_eq!(keyword, "active");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // A corrupt database can still be repaired by a replace.
        store.replace_config(&example(), &alice()).await.unwrap();
        assert_eq!(store.load_config().await.unwrap(), example());
    }

    #[tokio::test]
    async fn unknown_keywords_and_bad_comments_are_corrupt_not_panics() {
        let store = loaded(&example()).await;
        sqlx::query("INSERT INTO settings (keyword, value) VALUES ('flux_capacitor', '1')")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = store.global_settings().await.unwrap_err();
        assert!(
            matches!(&err, StorageError::Corrupt { table, keyword, .. }
                if table == "settings" && keyword == "flux_capacitor"),
            "{err}"
        );
        sqlx::query("DELETE FROM settings WHERE keyword = 'flux_capacitor'")
            .execute(&store.pool)
            .await
            .unwrap();
        sqlx::query("UPDATE real_servers SET comments = '[1, 2' WHERE name = 'web3'")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = store.load_config().await.unwrap_err();
        assert!(
            matches!(&err, StorageError::Corrupt { table, row, keyword, .. }
                if table == "real_servers" && row.contains("web3") && keyword == "comments"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_replace_that_fails_at_its_audit_entry_changes_nothing() {
        let original = example();
        let store = loaded(&original).await;
        let entries = store.audit().count().await.unwrap();
        // The audit entry is the transaction's last statement: if it fails, the rows
        // written before it must be rolled back too.
        sqlx::query(
            "CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let mut other = original.clone();
        other.virtuals.truncate(1);
        other.global.serial_no = Some(99);
        let err = store.replace_config(&other, &alice()).await.unwrap_err();
        assert!(err.to_string().contains("audit refused"), "{err}");
        assert_eq!(store.load_config().await.unwrap(), original);
        assert_eq!(store.audit().count().await.unwrap(), entries);
    }

    #[tokio::test]
    async fn global_settings_update_with_version_and_audit() {
        let store = loaded(&example()).await;
        let g = store.global_settings().await.unwrap();
        let mut settings = g.settings.clone();
        settings.deadtime = Some(crate::config::value::Secs(7500));
        let v = store
            .update_global_settings(g.version, &settings, &g.comments, &alice())
            .await
            .unwrap();
        assert_eq!(v, g.version + 1);
        assert_eq!(
            store.load_config().await.unwrap().global.deadtime,
            settings.deadtime
        );
        let entry = &store.audit().list(1, 0).await.unwrap()[0];
        assert_eq!(
            (entry.action.as_str(), entry.object.as_str()),
            (action::UPDATE, GLOBAL)
        );
        assert!(entry.before.as_deref().unwrap().contains("deadtime = 18"));
        assert!(entry.after.as_deref().unwrap().contains("deadtime = 7.5"));

        // The same version again: someone else's save came in between.
        let err = store
            .update_global_settings(g.version, &g.settings, &g.comments, &alice())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StorageError::Conflict { expected, found, .. }
                if expected == g.version && found == v),
            "{err}"
        );
        // Saving unchanged settings writes nothing and logs nothing.
        let entries = store.audit().count().await.unwrap();
        let same = store
            .update_global_settings(v, &settings, &g.comments, &alice())
            .await
            .unwrap();
        assert_eq!(same, v);
        assert_eq!(store.audit().count().await.unwrap(), entries);
    }

    #[tokio::test]
    async fn monitoring_scripts_are_the_check_keywords_of_a_virtual_server() {
        let store = loaded(&example()).await;
        let www = store.virtual_servers().list().await.unwrap().remove(0);
        let mut check = www.item.check.clone();
        check.timeout = Some(crate::config::value::Secs(2500));
        check.expect = None;
        let v = store
            .update_monitoring_scripts(www.id, www.version, &check, &alice())
            .await
            .unwrap();
        let again = store.virtual_servers().get(www.id).await.unwrap();
        assert_eq!(again.version, v);
        assert_eq!(again.item.check, check);
        assert_eq!(again.item.settings, www.item.settings);
        assert_eq!(again.item.servers, www.item.servers);
        let rows: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM monitoring_scripts WHERE owner_id = ? AND keyword = 'expect'",
        )
        .bind(www.id)
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(rows, 0);
    }

    /// The schema wants names unique within their parent; the random model does not
    /// care, so clashes get a suffix.
    fn unique_names(c: &mut Config) {
        fn dedupe<'a>(names: impl Iterator<Item = &'a mut String>) {
            let mut seen = HashSet::new();
            for name in names {
                while !seen.insert(name.clone()) {
                    name.push('_');
                }
            }
        }
        dedupe(c.floating.iter_mut().map(|f| &mut f.name));
        dedupe(c.local_checks.iter_mut().map(|l| &mut l.name));
        dedupe(c.vrrp.iter_mut().map(|v| &mut v.name));
        for list in [&mut c.virtuals, &mut c.failovers] {
            dedupe(list.iter_mut().map(|v| &mut v.name));
            for v in list.iter_mut() {
                dedupe(v.servers.iter_mut().map(|s| &mut s.name));
            }
        }
    }

    fn random_config(seed: u64) -> Config {
        let mut c = crate::config::arb::config(&mut rand::rngs::StdRng::seed_from_u64(seed));
        unique_names(&mut c);
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// For every configuration `render` can write (tricky quoting, escapes, IPv6,
        /// fractions, comments anywhere): loading what was stored gives it back, also
        /// when it replaces another one.
        #[test]
        fn load_of_replace_is_identity(first in any::<u64>(), second in any::<u64>()) {
            let (a, b) = (random_config(first), random_config(second));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (loaded_a, loaded_b) = runtime
                .block_on(async {
                    let store = Store::open_in_memory().await?;
                    store.replace_config(&a, &alice()).await?;
                    let loaded_a = store.load_config().await?;
                    store.replace_config(&b, &alice()).await?;
                    Ok::<_, StorageError>((loaded_a, store.load_config().await?))
                })
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(loaded_a, a);
            prop_assert_eq!(loaded_b, b);
        }
    }
}

//! `keepalived.conf` → [`Config`]: the importer for users coming from keepalived.
//!
//! Two stages:
//! - **Syntax.** keepalived's configuration language as users write it: nested `{ }`
//!   blocks (the brace on the same line or the next), several statements on one line
//!   (`real_server 10.0.0.1 80 { weight 1 }`), `#` and `!` comments anywhere outside
//!   quotes, quoted strings with C escapes, and `include` with globs and csh braces,
//!   relative to the including file. The result is a tree of statements, each with its
//!   file and line.
//! - **Mapping.** The blocks lvs-director understands (`global_defs`, `vrrp_script`,
//!   `vrrp_instance`, `vrrp_sync_group`, `virtual_server`) fill the `lvs.cf` model.
//!   Everything else — unknown blocks are skipped whole — becomes one warning naming the
//!   file, the line and the keyword, so the warnings are exactly what a keepalived user
//!   loses by switching.
//!
//! Pure: included files are read through the `read` and `glob` functions the caller
//! passes in (the CLI gives the file system, tests an in-memory map).
//!
//! Files, in the order the import runs: `tokens` (words, braces, line ends), `loader`
//! (the statement tree of `tree`, includes spliced in), then the mapping: this file's
//! `import` and `Importer::run`, which hand each top-level block to `global`, `vrrp`,
//! `vrrp_script`, `virtual_server` (with `checkers`), then `finish`; `values` reads
//! keepalived's value syntax for all of them and `report` words and places the warnings.

mod checkers;
mod finish;
mod global;
mod loader;
mod report;
#[cfg(test)]
mod testing;
mod tokens;
mod tree;
mod values;
mod virtual_server;
mod vrrp;
mod vrrp_script;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;

use super::model::*;
use loader::{normalize, Loader};
use report::{Note, NO_EQUIVALENT};
use tree::Node;
use vrrp::{Instance, Vip};

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Imported {
    pub config: Config,
    /// What was not imported, or imported with a caveat, in file order:
    /// `` FILE:LINE: `keyword` not imported: reason ``.
    pub warnings: Vec<String>,
}

/// Why a file could not be imported at all. Everything short of these is a warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The text is not keepalived configuration (unbalanced braces, an unterminated
    /// quote, …).
    #[error("{file}:{line}:{col}: {message}")]
    Syntax {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// An `include` that cannot be followed: a cycle, nesting deeper than
    /// [`MAX_INCLUDE_DEPTH`], or a file that exists but cannot be read.
    #[error("{file}:{line}: {message}")]
    Include {
        file: String,
        line: usize,
        message: String,
    },
}

/// Deepest chain of nested includes followed.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// keepalived's include keywords; the strict variants only differ in error checking.
const INCLUDE_WORDS: &[&str] = &[
    "include", "includer", "includem", "includew", "includeb", "includea",
];

/// Imports a keepalived configuration.
///
/// `path` names the main file: it is used in messages and as the base of relative
/// includes. `read` returns the text of an included file (an error of kind `NotFound`
/// is a warning, as in keepalived; any other error fails the import). `glob` returns
/// the paths matching a wildcard pattern (`*`, `?`, `[…]`); it is called only for
/// patterns that contain one.
pub fn import(
    path: &str,
    text: &str,
    read: &mut dyn FnMut(&str) -> io::Result<String>,
    glob: &mut dyn FnMut(&str) -> Vec<String>,
) -> Result<Imported, ImportError> {
    let mut loader = Loader {
        read,
        glob,
        files: Vec::new(),
        chain: Vec::new(),
        notes: Vec::new(),
        seq: 0,
    };
    let nodes = loader.load(normalize(Path::new(path)), text)?;
    let Loader { files, notes, .. } = loader;
    let mut im = Importer {
        files,
        notes,
        cfg: Config::default(),
        vips: Vec::new(),
        tracked: Vec::new(),
        default_dev: None,
        vrids: HashMap::new(),
        fwmark_pending: Vec::new(),
        script_names: Vec::new(),
        script_blocks: HashMap::new(),
        sync_groups: HashMap::new(),
        vrrp_defaults: vrrp::Defaults::default(),
        services: HashSet::new(),
        vs_groups: HashMap::new(),
    };
    im.run(&nodes);
    let Importer {
        cfg,
        mut notes,
        files,
        ..
    } = im;
    // Each note carries the sequence number of its statement, so sorting puts them in
    // the order of the text, includes spliced in where they stand.
    notes.sort_by_key(|n| n.seq);
    let warnings = notes
        .into_iter()
        .map(|n| format!("{}:{}: {}", files[n.file], n.line, n.text))
        .collect();
    Ok(Imported {
        config: cfg,
        warnings,
    })
}

struct Importer<'n> {
    files: Vec<String>,
    notes: Vec<Note>,
    cfg: Config,
    vips: Vec<Vip<'n>>,
    /// `track_script` entries: script name, weight override, where.
    tracked: Vec<(String, Option<i64>, &'n Node)>,
    /// Device for addresses whose device keepalived leaves to the system.
    default_dev: Option<String>,
    /// virtual_router_id of each instance, for `lvs_sync_daemon`'s default sync id.
    vrids: HashMap<String, u32>,
    /// fwmark virtual servers (index, header) whose address comes from a VIP.
    fwmark_pending: Vec<(usize, &'n Node)>,
    /// Names of the `vrrp_script`s read.
    script_names: Vec<String>,
    /// The `local_check` each `vrrp_script` became, by the script's name.
    script_blocks: HashMap<String, String>,
    /// Each instance's sync group (and where it was named), by instance name.
    sync_groups: HashMap<String, (String, &'n Node)>,
    /// `global_defs`' `vrrp_garp_*`: each instance's defaults.
    vrrp_defaults: vrrp::Defaults<'n>,
    /// Services imported so far (address, port, protocol), to skip duplicates.
    services: HashSet<String>,
    /// `virtual_server_group` blocks by name.
    vs_groups: HashMap<String, &'n Node>,
}

impl<'n> Importer<'n> {
    fn run(&mut self, nodes: &'n [Node]) {
        let mut scripts = Vec::new();
        let mut instances = Vec::new();
        let mut groups = Vec::new();
        let mut virtuals = Vec::new();
        let mut sync_daemon = None;
        for n in nodes {
            let want_block = matches!(
                n.kw(),
                "global_defs"
                    | "vrrp_script"
                    | "vrrp_instance"
                    | "vrrp_sync_group"
                    | "virtual_server"
                    | "virtual_server_group"
            );
            if want_block && n.block.is_none() {
                self.not_imported(n, "a block `{ … }` was expected");
                continue;
            }
            match n.kw() {
                "global_defs" => {
                    if let Some(s) = self.global_defs(n) {
                        sync_daemon = Some(s);
                    }
                }
                "vrrp_script" => scripts.push(n),
                "vrrp_instance" => instances.push(n),
                "vrrp_sync_group" => groups.push(n),
                "virtual_server" => virtuals.push(n),
                "virtual_server_group" => match n.args() {
                    [name] => {
                        self.vs_groups.insert(name.text.clone(), n);
                    }
                    _ => self.not_imported(n, "`virtual_server_group NAME { … }` expected"),
                },
                _ => self.top_level_other(n),
            }
        }
        let instances: Vec<Instance<'n>> =
            instances.into_iter().map(|n| self.instance(n)).collect();
        for g in groups {
            self.sync_group(g);
        }
        if instances.is_empty() {
            if let Some(v) = virtuals.first() {
                self.note(v, "no vrrp_instance: imported as a single director (backup_active = 0); set primary, backup and backup_active = 1 to run a director pair");
            }
        }
        for s in scripts {
            self.script(s);
        }
        self.untracked_scripts();
        self.vrrp_blocks(instances);
        for v in virtuals {
            self.virtual_server(v);
        }
        self.fwmark_addresses();
        self.forwarding();
        // Under VRRP the instances raise their own addresses.
        if self.cfg.vrrp.is_empty() {
            self.floating_addresses();
        }
        if let Some(s) = sync_daemon {
            self.sync_daemon(s);
        }
        self.header_comment();
    }

    fn top_level_other(&mut self, n: &Node) {
        let why = match n.kw() {
            "static_ipaddress" | "static_routes" | "static_rules" => "lvs-director does not manage static addresses, routes or rules: configure them in the operating system",
            "vrrp_track_process" | "track_process" | "vrrp_track_file" | "track_file" => "only programs can be tracked in lvs-director: write the test as a script (it becomes a local_check)",
            "bfd_instance" => "BFD is not supported",
            "linkbeat_interfaces" => "lvs-director watches links through netlink (monitor_links)",
            "SSL" => "client certificates for SSL_GET checks are not supported",
            "garp_group" => "gratuitous ARP is set globally in lvs-director (garp_count, garp_interval, garp_refresh)",
            _ => NO_EQUIVALENT,
        };
        self.not_imported(n, why);
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::config::{parse, render, validate};
    use proptest::prelude::*;

    #[test]
    fn unknown_blocks_are_skipped_whole_with_one_warning() {
        let r = imp("bfd_instance b1 {\n  neighbor_ip 10.0.0.9\n  weird { nested { deep } }\n}\nglobal_defs {\n router_id x\n frobnicate { a b }\n}\n");
        assert_eq!(
            r.warnings,
            [
                "keepalived.conf:1: `bfd_instance b1 { … }` not imported: BFD is not supported",
                "keepalived.conf:6: `router_id` not imported: lvs-director tells the directors apart by their addresses (primary, backup)",
                "keepalived.conf:7: `frobnicate { … }` not imported: no lvs-director equivalent",
            ]
        );
        assert_eq!(r.config, {
            let mut c = Config::default();
            c.comments.add(
                Comments::END,
                vec![" Imported from keepalived.conf by lvs-director: read the import warnings before applying.".into()],
            );
            c
        });
    }

    #[test]
    fn empty_input_imports_nothing() {
        let r = imp("");
        assert!(r.warnings.is_empty());
        assert!(r.config.virtuals.is_empty() && r.config.global.is_empty());
    }

    // ---- robustness ----

    /// Imports, then checks what must hold for any input: no panic (by getting here),
    /// and a model that survives render → parse unchanged.
    fn check_any(text: &str) {
        let files = [
            ("a.conf", "virtual_server 10.0.0.9 80 {\n"),
            ("b.conf", "include a.conf\n"),
        ];
        if let Ok(r) = import_with("k.conf", text, &files) {
            let _ = validate(&r.config);
            let rendered = render(&r.config);
            let back = parse(&rendered).unwrap_or_else(|e| panic!("{rendered}\n{e:?}"));
            assert_eq!(back.config, r.config, "{rendered}");
        }
    }

    const VOCAB: &[&str] = &[
        "{",
        "}",
        "{",
        "}",
        "\n",
        "\n",
        "\n",
        "#",
        "!",
        "\"",
        "'",
        "\\",
        "$X",
        "${Y}",
        "@n",
        "~SEQ(i,1,1,2)",
        "include",
        "a.conf",
        "b.conf",
        "*.conf",
        "global_defs",
        "vrrp_instance",
        "vrrp_script",
        "vrrp_sync_group",
        "virtual_server",
        "real_server",
        "virtual_server_group",
        "group",
        "fwmark",
        "state",
        "MASTER",
        "BACKUP",
        "interface",
        "eth0",
        "advert_int",
        "0.5",
        "unicast_src_ip",
        "unicast_peer",
        "virtual_ipaddress",
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.1/24",
        "2001:db8::1",
        "2001:db8::2/64",
        "dev",
        "label",
        "eth0:1",
        "track_script",
        "script",
        "chk",
        "weight",
        "-5",
        "notify_master",
        "notification_email",
        "smtp_server",
        "a@b",
        "lb_algo",
        "sh",
        "sh-port",
        "lb_kind",
        "NAT",
        "DR",
        "TUN",
        "type",
        "gue",
        "port",
        "80",
        "0",
        "53",
        "protocol",
        "UDP",
        "TCP",
        "persistence_timeout",
        "persistence_granularity",
        "255.255.255.0",
        "sorry_server",
        "inhibit_on_failure",
        "delay_loop",
        "connect_timeout",
        "retry",
        "TCP_CHECK",
        "HTTP_GET",
        "SSL_GET",
        "MISC_CHECK",
        "misc_path",
        "url",
        "path",
        "/x",
        "status_code",
        "200-299",
        "regex",
        "(",
        "virtualhost",
        "h.example",
        "PING_CHECK",
        "DNS_CHECK",
        "connect_port",
        "uthreshold",
        "lthreshold",
        "lvs_sync_daemon",
        "lvs_timeouts",
        "tcp",
        "ops",
        "nopreempt",
        "preempt_delay",
        "3",
        "x",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Random bytes never make the importer panic.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            check_any(&String::from_utf8_lossy(&bytes));
        }

        /// Random sequences of keepalived words reach deep into the mapping without a
        /// panic, and whatever is imported renders and parses back unchanged.
        #[test]
        fn token_soup_never_panics(toks in proptest::collection::vec(proptest::sample::select(VOCAB), 0..120)) {
            check_any(&toks.join(" "));
        }

        /// Well-formed blocks with random content: the same properties.
        #[test]
        fn balanced_soup_never_panics(
            toks in proptest::collection::vec(proptest::sample::select(VOCAB), 0..60),
            head in proptest::sample::select(&["virtual_server 10.0.0.1 80", "vrrp_instance VI", "global_defs", "virtual_server fwmark 4", "vrrp_script s"][..]),
        ) {
            let body: String = toks.iter().copied().filter(|t| !matches!(*t, "{" | "}" | "\"" | "'")).collect::<Vec<_>>().join(" ");
            check_any(&format!("{head} {{\n{body}\nreal_server 10.0.0.2 80 {{\n{body}\n}}\n}}\n"));
        }
    }
}

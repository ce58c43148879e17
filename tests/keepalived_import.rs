//! Golden tests of the keepalived importer. Each `tests/keepalived/NAME.conf` (a file as
//! keepalived users write them) must import to exactly `NAME.lvs.cf`, with exactly the
//! warnings listed in `NAME.warnings`; the result must validate without errors and come
//! back unchanged from render → parse.
//!
//! After an intended change, `BLESS=1 cargo test --test keepalived_import` rewrites the
//! expected files; review their diff before committing it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::io;
use std::path::Path;

use lvs_director::config::{self, keepalived};

const DIR: &str = "tests/keepalived";

/// Reads included files below `tests/keepalived` only: an absolute path (a file of the
/// machine that wrote the configuration) does not exist here.
fn read(p: &str) -> io::Result<String> {
    if Path::new(p).is_absolute() {
        return Err(io::ErrorKind::NotFound.into());
    }
    std::fs::read_to_string(Path::new(DIR).join(p))
}

fn glob(pattern: &str) -> Vec<String> {
    if Path::new(pattern).is_absolute() {
        return Vec::new();
    }
    let Ok(paths) = glob::glob(&format!("{DIR}/{pattern}")) else {
        return Vec::new();
    };
    paths
        .filter_map(Result::ok)
        .filter_map(|p| {
            p.strip_prefix(DIR)
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        })
        .collect()
}

fn expected(path: &Path, actual: &str) -> String {
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(path, actual).unwrap();
    }
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn golden(name: &str) {
    let main = format!("{name}.conf");
    let text = std::fs::read_to_string(Path::new(DIR).join(&main)).unwrap();
    let imported = keepalived::import(&main, &text, &mut read, &mut glob)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let rendered = config::render(&imported.config);
    let warnings: String = imported.warnings.iter().map(|w| format!("{w}\n")).collect();

    let want_cf = expected(&Path::new(DIR).join(format!("{name}.lvs.cf")), &rendered);
    let want_warnings = expected(&Path::new(DIR).join(format!("{name}.warnings")), &warnings);
    assert_eq!(rendered, want_cf, "{name}: rendered lvs.cf differs");
    assert_eq!(warnings, want_warnings, "{name}: warnings differ");

    let errors: Vec<String> = config::validate(&imported.config)
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| d.message)
        .collect();
    assert!(errors.is_empty(), "{name}: validation errors: {errors:#?}");

    let parsed = config::parse(&rendered).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(
        parsed.config, imported.config,
        "{name}: render → parse changed the model"
    );
}

#[test]
fn nat_web_cluster_with_http_checks() {
    golden("nat_web");
}

#[test]
fn dr_backup_director_with_tcp_checks_persistence_and_fwmark() {
    golden("dr_fwmark");
}

#[test]
fn vrrp_only_hot_standby_for_nginx() {
    golden("nginx_vrrp");
}

#[test]
fn ssl_misc_checks_sorry_server_and_inhibit_on_failure() {
    golden("shop_ssl");
}

#[test]
fn ipv6_dns_with_includes_from_a_subdirectory() {
    golden("dns6");
}

#[test]
fn legacy_lvs_only_director_with_unsupported_features() {
    golden("legacy_lvs");
}

/// Every fixture is listed above, so none is silently left untested.
#[test]
fn every_fixture_has_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".conf")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dns6",
            "dr_fwmark",
            "legacy_lvs",
            "nat_web",
            "nginx_vrrp",
            "shop_ssl"
        ]
    );
}

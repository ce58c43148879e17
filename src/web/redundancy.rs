//! The VRRP half of the Redundancy page (whose heartbeat half is in [`super::settings`]):
//! which HA protocol the directors speak, and the VRRP instances (`vrrp NAME { … }`
//! blocks, keepalived's `vrrp_instance`) with their forms. The list/form/delete
//! machinery is the extras pages' ([`super::extras::Kind`]); what is VRRP's is here:
//! its fields and its summary.

use axum::Router;

use super::extras::{kind_routes, rows, Kind, Row};
use super::form::{self, choice, flag, text, Field, FieldSpec, Submitted};
use super::AppState;
use crate::config::{Config, Scope, VrrpInstance};
use crate::storage::{Blocks, Snapshot, Store, Stored};
use std::collections::HashMap;

const VRRP_SPECS: &[FieldSpec] = &[
    flag("active", "Active"),
    text("interface", "Interface"),
    choice(
        "state",
        "Initial state",
        &[("backup", "backup"), ("master", "master")],
    ),
    text("virtual_router_id", "Virtual router id (1-255)"),
    text("priority", "Priority (1-255)"),
    text("advert_int", "Advert interval (s)"),
    choice("version", "VRRP version", &[("2", "2"), ("3", "3")]),
    flag("preempt", "Preempt"),
    text("preempt_delay", "Preempt delay (s)"),
    choice(
        "auth_type",
        "Authentication",
        &[("none", "none"), ("pass", "PASS (no protection)")],
    ),
    text("auth_pass", "PASS password"),
    text("virtual_ipaddress", "Virtual addresses"),
    text("virtual_ipaddress_excluded", "Addresses not in adverts"),
    text("unicast_src_ip", "Source address of adverts"),
    text("unicast_peer", "Unicast peers"),
    text("track_interface", "Tracked interfaces"),
    text("track_script", "Tracked local checks"),
    text("sync_group", "Sync group"),
    text("notify_master", "On becoming master"),
    text("notify_backup", "On becoming backup"),
    text("notify_fault", "On entering FAULT"),
    text("notify", "On every change"),
    text("garp_master_delay", "Second announcement burst after (s)"),
    text("garp_master_repeat", "Announcements per burst"),
    text("garp_master_refresh", "Re-announce every (s)"),
    text(
        "garp_lower_prio_repeat",
        "Announcements on hearing a lower priority",
    ),
    text("down_timer_adverts", "Adverts missed before taking over"),
    text("advert_copies", "Adverts sent per interval as master"),
    flag(
        "lvs_sync_daemon",
        "Connection-sync daemon follows this instance",
    ),
];

impl Kind for VrrpInstance {
    const PATH: &'static str = "/vrrp";
    const WHAT: &'static str = "VRRP instance";
    const LIST: &'static str = "/redundancy";
    const NAV: &'static str = "redundancy";
    fn blocks(store: &Store) -> Blocks<'_, Self> {
        store.vrrp_instances()
    }
    fn stored(s: &Snapshot) -> &[Stored<Self>] {
        &s.vrrp
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.vrrp
    }
    fn scope(index: usize) -> Scope {
        Scope::Vrrp(index)
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: String) {
        self.name = name;
    }
    fn fields(&self, typed: Option<&Submitted>, errors: &HashMap<String, String>) -> Vec<Field> {
        form::fields(VRRP_SPECS, &self.settings, typed, errors)
    }
    fn apply(&mut self, typed: &Submitted, errors: &mut HashMap<String, String>) {
        form::apply(VRRP_SPECS, typed, &mut self.settings, errors);
    }
    fn keywords() -> Vec<&'static str> {
        VRRP_SPECS.iter().map(|s| s.keyword).collect()
    }
    fn summary(&self) -> String {
        summary(self)
    }
    fn active(&self) -> bool {
        self.settings.active()
    }
}

/// "router id 51 on eth0, priority 150, v3 every 0.1 s: 192.0.2.100/24 (sync group G)".
fn summary(v: &VrrpInstance) -> String {
    let st = &v.settings;
    let or = |k: &str, d: &str| st.get(k).unwrap_or_else(|| d.to_string());
    let mut s = format!(
        "router id {} on {}, priority {}, {} s",
        or("virtual_router_id", "?"),
        or("interface", "?"),
        st.priority(),
        st.advert_int()
    );
    if let Some(version) = st.get("version") {
        s.push_str(&format!(", version {version}"));
    }
    let vips: Vec<String> = st
        .virtual_ipaddress
        .iter()
        .flat_map(|l| l.0.iter().map(|x| x.addr.to_string()))
        .collect();
    s.push_str(&format!(
        ": {}",
        if vips.is_empty() {
            "no address".to_string()
        } else {
            vips.join(" ")
        }
    ));
    if let Some(g) = &st.sync_group {
        s.push_str(&format!(" (sync group {})", g.0));
    }
    s
}

/// What the directors speak, said at the top of the page.
fn protocol(c: &Config) -> &'static str {
    if c.uses_vrrp() {
        "VRRP: at least one instance below is active, so the directors speak VRRP (wire-compatible with keepalived) and the heartbeat settings (primary, backup) are not used."
    } else {
        "the heartbeat: no VRRP instance is active, so the directors use the heartbeat set on the Global settings page. Activate an instance to speak VRRP instead (then set backup_active = 0)."
    }
}

/// What the Redundancy page shows of VRRP.
#[derive(Debug, Clone)]
pub struct VrrpPart {
    pub protocol: &'static str,
    pub rows: Vec<Row>,
}

pub fn part(c: &super::Cached) -> VrrpPart {
    VrrpPart {
        protocol: protocol(&c.config),
        rows: rows(&c.snapshot.vrrp),
    }
}

pub fn routes() -> Router<AppState> {
    kind_routes::<VrrpInstance>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VrrpSettings;

    #[test]
    fn every_keyword_of_the_block_is_on_the_form() {
        let specs: Vec<_> = VRRP_SPECS.iter().collect();
        form::assert_fields_of(&specs, VrrpSettings::KEYWORDS, "vrrp");
        for k in VrrpSettings::KEYWORDS {
            assert!(
                VRRP_SPECS.iter().any(|s| s.keyword == *k),
                "{k} is missing from the form"
            );
        }
    }

    #[test]
    fn a_form_becomes_the_block_and_bad_values_are_said_at_their_field() {
        let mut v = VrrpInstance::default();
        let typed: Submitted = [
            ("active", "1"),
            ("interface", "eth0"),
            ("virtual_router_id", "51"),
            ("priority", "150"),
            ("advert_int", "0.1"),
            ("version", "3"),
            // Lists as lvs.cf writes them (what the field shows, too).
            (
                "virtual_ipaddress",
                "[ 192.0.2.10/24 \"192.0.2.11/24 dev eth1\" ]",
            ),
            ("track_script", "[ chk \"db weight -30\" ]"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut errors = HashMap::new();
        v.apply(&typed, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(v.settings.virtual_router_id, Some(51));
        assert_eq!(
            v.settings.virtual_ipaddress.as_ref().unwrap().0[1].to_string(),
            "192.0.2.11/24 dev eth1"
        );
        v.name = "VI_1".into();
        assert_eq!(
            summary(&v),
            "router id 51 on eth0, priority 150, 0.1 s, version 3: 192.0.2.10 192.0.2.11"
        );
        let mut bad = typed.clone();
        bad.insert("virtual_router_id".into(), "300".into());
        bad.insert("virtual_ipaddress".into(), "[ 192.0.2.300/24 ]".into());
        let mut errors = HashMap::new();
        VrrpInstance::default().apply(&bad, &mut errors);
        assert!(errors.contains_key("virtual_router_id"), "{errors:?}");
        assert!(
            errors["virtual_ipaddress"].contains("192.0.2.300"),
            "{errors:?}"
        );
    }

    #[test]
    fn the_page_says_which_protocol_runs() {
        let mut c = Config::default();
        assert!(protocol(&c).starts_with("the heartbeat"));
        let mut v = VrrpInstance::default();
        v.settings.active = Some(true);
        c.vrrp.push(v);
        assert!(protocol(&c).starts_with("VRRP"));
    }
}

//! `vrrp_script` → `local_check`: a failing script makes the director hand its
//! addresses over, so only the scripts an instance tracks become active checks.

use std::collections::HashSet;

use super::report::{NO_EQUIVALENT, RUN_AS};
use super::tree::Node;
use super::values::{block_name, unique_name};
use super::Importer;
use crate::config::model::*;
use crate::config::value::*;

impl<'n> Importer<'n> {
    pub(super) fn script(&mut self, n: &'n Node) {
        let Some(name_w) = n.args().first() else {
            return self.not_imported(n, "the script has no name");
        };
        let raw_name = name_w.text.clone();
        let mut check = CheckSettings {
            check: Some(CheckKind::Program),
            ..Default::default()
        };
        let mut interval = Secs::from_secs(1);
        let mut timeout = None;
        let mut rise = 1;
        let mut fall = 1;
        let mut weight = None;
        for c in n.children() {
            match c.kw() {
                "script" => check.send_program = self.command(c, true),
                "interval" => {
                    if let Some(v) = self.arg_timer(c) {
                        interval = v;
                    }
                }
                "timeout" => timeout = self.arg_timer(c),
                "rise" => {
                    if let Some(v) = self.arg_u32(c) {
                        rise = v.max(1);
                    }
                }
                "fall" => {
                    if let Some(v) = self.arg_u32(c) {
                        fall = v.max(1);
                    }
                }
                "weight" => match n_weight(c) {
                    Some(w) => weight = Some((w, c)),
                    None => self.bad_value(c, "the weight is not a number"),
                },
                "user" => self.not_imported(c, RUN_AS),
                "init_fail" => self.not_imported(
                    c,
                    "a local check starts as passing, and a failure hands over after `fall` checks",
                ),
                _ => self.not_imported(c, NO_EQUIVALENT),
            }
        }
        if check.send_program.is_none() {
            return self.not_imported(n, "it has no usable `script`");
        }
        if interval.is_zero() {
            interval = Secs::from_secs(1);
        }
        check.check_interval = Some(interval);
        // keepalived: "timeout … (default = interval)".
        check.timeout = Some(timeout.filter(|t| !t.is_zero()).unwrap_or(interval));
        check.rise = Some(rise);
        check.fall = Some(fall);
        let used = self.tracked.iter().any(|(t, _, _)| *t == raw_name);
        let weight = match weight {
            Some((w, _)) if (-253..=253).contains(&w) => Some(w as i32).filter(|w| *w != 0),
            Some((_, at)) => {
                self.bad_value(at, "a weight is -253 to 253");
                None
            }
            None => None,
        };
        let taken: HashSet<String> = self
            .cfg
            .local_checks
            .iter()
            .map(|l| l.name.clone())
            .collect();
        let name = unique_name(block_name(&raw_name, "vrrp_script"), &taken);
        if !used {
            self.note(n, format!("`vrrp_script {raw_name}`: no track_script uses it: imported as local_check {name} with active = 0"));
        }
        self.script_blocks.insert(raw_name.clone(), name.clone());
        self.cfg.local_checks.push(LocalCheck {
            name,
            settings: LocalCheckSettings {
                active: Some(used),
                weight,
                ..Default::default()
            },
            check,
            comments: Comments::default(),
        });
        self.script_names.push(raw_name);
    }

    pub(super) fn untracked_scripts(&mut self) {
        let tracked = std::mem::take(&mut self.tracked);
        for (name, _, at) in &tracked {
            if !self.script_names.contains(name) {
                self.note(
                    at,
                    format!("`track_script {name}` not imported: there is no vrrp_script {name}"),
                );
            }
        }
        self.tracked = tracked;
    }
}

/// The number of `weight N [reverse]`.
fn n_weight(c: &Node) -> Option<i64> {
    c.args().first().and_then(|w| w.text.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn scripts_are_active_only_when_tracked() {
        // One statement per line inside the braces: `{ script "/bin/a" weight 10 }` would
        // be a script with the arguments `weight 10`, for keepalived as for the import.
        let r = imp("vrrp_script a {\n script \"/bin/a\"\n weight 10\n}\nvrrp_script b { script /bin/b }\nvrrp_instance V {\n track_script {\n  a weight -5\n  c\n }\n}\n");
        let act: Vec<(&str, Option<bool>)> = r
            .config
            .local_checks
            .iter()
            .map(|l| (l.name.as_str(), l.settings.active))
            .collect();
        assert_eq!(act, [("a", Some(true)), ("b", Some(false))]);
        // The script's weight is the check's; the instance's own stays with the instance.
        assert_eq!(r.config.local_checks[0].settings.weight, Some(10));
        let tracked = &r.config.vrrp[0].settings.track_script.as_ref().unwrap().0;
        assert_eq!(tracked.len(), 1);
        assert_eq!(
            (tracked[0].name.as_str(), tracked[0].weight),
            ("a", Some(-5))
        );
        assert!(!has(&r.warnings, "weight"), "{:#?}", r.warnings);
        assert!(has(
            &r.warnings,
            "keepalived.conf:9: `track_script c` not imported: there is no vrrp_script c"
        ));
        assert!(has(
            &r.warnings,
            "keepalived.conf:5: `vrrp_script b`: no track_script uses it"
        ));
    }
}

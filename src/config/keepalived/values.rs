//! keepalived's value syntax read for `lvs.cf`: booleans, timers, block names,
//! commands, mail addresses, and one-value statements that report what they drop. Kept
//! apart from the blocks so that each mapping file reads as keyword → setting.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Component, Path};

use super::report::RUN_AS;
use super::tree::{join_words, joined, shorten, Node};
use super::Importer;
use crate::config::model::*;
use crate::config::value::*;

/// keepalived `<BOOL>`: on|off|true|false|yes|no.
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// keepalived `<TIMER>`: seconds with a fraction (µs resolution). Returns the value in
/// lvs-director's millisecond resolution and whether rounding lost something.
pub(super) fn parse_timer(s: &str) -> Option<(Secs, bool)> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if (whole.is_empty() && frac.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let w: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let ms3: String = frac.chars().chain("000".chars()).take(3).collect();
    let rest = frac.get(3..).unwrap_or("");
    let mut ms = w.checked_mul(1000)?.checked_add(ms3.parse().ok()?)?;
    if rest.starts_with(['5', '6', '7', '8', '9']) {
        ms = ms.checked_add(1)?;
    }
    Some((Secs(ms), rest.bytes().any(|b| b != b'0')))
}

/// Longest block name the import makes, in characters (imported names stay readable
/// in lists and messages).
const MAX_NAME: usize = 64;

/// A keepalived name (of a vrrp_script, a vrrp_instance) as an `lvs.cf` block name:
/// blanks and control characters become `_`, and the name is cut to [`MAX_NAME`]
/// characters. Whatever else it holds is kept: [`name_problem`] is the one rule for
/// block names, and `fallback` is used when even the cleaned name breaks it.
pub(super) fn block_name(s: &str, fallback: &str) -> String {
    let name: String = s
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .take(MAX_NAME)
        .collect();
    if name_problem(&name).is_none() {
        name
    } else {
        fallback.to_string()
    }
}

/// `base`, or `base_2`, `base_3`, … (cut to [`MAX_NAME`]): the first not `taken`.
pub(super) fn unique_name(base: String, taken: &HashSet<String>) -> String {
    if !taken.contains(&base) {
        return base;
    }
    (2..)
        .map(|i| {
            let suffix = format!("_{i}");
            let keep = MAX_NAME.saturating_sub(suffix.len());
            format!("{}{suffix}", base.chars().take(keep).collect::<String>())
        })
        .find(|n| !taken.contains(n) && name_problem(n).is_none())
        .unwrap_or(base)
}

pub(super) fn ip_name(ip: &IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "_")
}

/// Characters that need a shell; lvs-director runs commands without one.
fn shell_syntax(cmd: &str) -> Option<char> {
    cmd.chars().find(|c| "|&;<>`$()*?~".contains(*c))
}

/// The command with the real server's address and port written as nanny's `%h` and
/// `%p`, when the address appears in it as a word.
pub(super) fn with_placeholders(cmd: &str, (ip, port): (IpAddr, u16)) -> Option<String> {
    let (ip, port) = (ip.to_string(), port.to_string());
    let words: Vec<&str> = cmd.split(' ').collect();
    if !words.contains(&ip.as_str()) {
        return None;
    }
    Some(
        words
            .iter()
            .map(|&w| {
                if w == ip {
                    "%h"
                } else if w == port {
                    "%p"
                } else {
                    w
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The address of `Name <user@host>` (mail items must be single words in `lvs.cf`).
pub(super) fn mail_address(s: &str) -> &str {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].trim(),
        _ => s.trim(),
    }
}

pub(super) fn writable_word(s: &str) -> bool {
    Word(s.to_string()).unwritable().is_none() && !s.is_empty()
}

pub(super) fn writable_item(s: &str) -> bool {
    List(vec![s.to_string()]).unwritable().is_none()
}

impl<'n> Importer<'n> {
    /// The value of a one-value statement. Words after it are reported and dropped:
    /// keepalived's handlers read the first word and ignore the rest, so
    /// `path /status digest …` on one line checks `/status` without a digest there too.
    pub(super) fn one_arg<'a>(&mut self, n: &'a Node) -> Option<&'a str> {
        if n.block.is_some() {
            self.not_imported(n, "a value was expected, not a block");
            return None;
        }
        match n.args() {
            [] => {
                self.bad_value(n, "a value is missing");
                None
            }
            [a] => Some(a.text.as_str()),
            [a, rest @ ..] => {
                let rest = join_words(rest);
                let kw = n.kw().to_string();
                self.note(
                    n,
                    format!(
                        "`{kw} {}`: `{}` after the value not imported (keepalived ignores it too)",
                        shorten(&a.text),
                        rest
                    ),
                );
                Some(a.text.as_str())
            }
        }
    }

    pub(super) fn arg_u32(&mut self, n: &Node) -> Option<u32> {
        let s = self.one_arg(n)?;
        match s.parse::<u32>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.bad_value(n, "a whole number expected");
                None
            }
        }
    }

    pub(super) fn arg_timer(&mut self, n: &Node) -> Option<Secs> {
        let s = self.one_arg(n)?;
        self.timer(n, s)
    }

    pub(super) fn timer(&mut self, n: &Node, s: &str) -> Option<Secs> {
        match parse_timer(s) {
            Some((v, rounded)) => {
                if rounded {
                    let kw = n.kw().to_string();
                    self.note(
                        n,
                        format!("`{kw} {s}`: rounded to {v} s (lvs-director has millisecond resolution)"),
                    );
                }
                Some(v)
            }
            None => {
                self.bad_value(n, "seconds expected (e.g. 3 or 0.5)");
                None
            }
        }
    }

    /// A `<BOOL>` that may be omitted (then true).
    pub(super) fn arg_flag(&mut self, n: &Node) -> Option<bool> {
        match n.args() {
            [] => Some(true),
            [a] => {
                let v = parse_bool(&a.text);
                if v.is_none() {
                    self.bad_value(n, "on/off, yes/no or true/false expected");
                }
                v
            }
            _ => {
                self.bad_value(n, "one value expected");
                None
            }
        }
    }

    /// A command for `lvs.cf`: the script string, with keepalived's trailing
    /// `[username [:][groupname]]` reported as not imported.
    pub(super) fn command(&mut self, n: &Node, join_all: bool) -> Option<Text> {
        let args = n.args();
        let (cmd, user) = if join_all {
            (joined(args), None)
        } else {
            (
                args.first().map(|w| w.text.clone()).unwrap_or_default(),
                args.get(1..).filter(|r| !r.is_empty()).map(join_words),
            )
        };
        let kw = n.kw().to_string();
        if cmd.trim().is_empty() {
            self.bad_value(n, "the command is missing");
            return None;
        }
        let text = Text(cmd);
        if let Some(why) = text.unwritable() {
            self.bad_value(n, &format!("the command {why}, which lvs.cf cannot hold"));
            return None;
        }
        if let Some(user) = user {
            self.note(
                n,
                format!("`{kw}`: the user `{user}` after the command not imported: {RUN_AS} (quote the command if `{user}` was meant as its arguments)"),
            );
        }
        if let Some(c) = shell_syntax(&text.0) {
            self.note(
                n,
                format!("`{kw}` uses shell syntax (`{c}`): lvs-director runs commands without a shell; put it in a script"),
            );
        }
        let program = text
            .0
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_matches(['"', '\'']);
        let in_scripts = Path::new(program)
            .strip_prefix(DEFAULT_SCRIPTS_DIR)
            .is_ok_and(|rest| {
                !rest.as_os_str().is_empty()
                    && rest.components().all(|c| matches!(c, Component::Normal(_)))
            });
        if !in_scripts {
            self.note(
                n,
                format!("`{kw}`: lvs-director runs commands as root only from its scripts directory ({DEFAULT_SCRIPTS_DIR} unless `pulse --scripts-dir` names another; the folder and the program root's alone): put `{program}` there, or a script that runs it (as root), and change the path"),
            );
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::config::{parse, render};

    /// Imported commands must end up in the scripts directory: every one elsewhere is
    /// said to need moving, and shell syntax is not pointed at a shell any more.
    #[test]
    fn commands_outside_the_scripts_directory_are_warned_about() {
        let r = imp("vrrp_instance A {\n state MASTER\n notify_master /etc/keepalived/up.sh\n                      notify_backup /etc/lvs-director/scripts/down.sh\n                      notify \"/usr/bin/logger -t ka | wall\"\n}\n\
                     virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 { MISC_CHECK { misc_path /etc/lvs-director/scripts/../../../bin/sh } }\n}\n");
        let moved: Vec<&String> = r
            .warnings
            .iter()
            .filter(|w| w.contains("runs commands as root only from its scripts directory (/etc/lvs-director/scripts"))
            .collect();
        assert_eq!(moved.len(), 3, "{:#?}", r.warnings);
        assert!(
            moved[0].contains("`notify_master`")
                && moved[0].contains("put `/etc/keepalived/up.sh` there")
        );
        assert!(moved[1].contains("`notify`") && moved[1].contains("`/usr/bin/logger`"));
        assert!(moved[2].contains("`misc_path`"), "`..` leaves the folder");
        assert!(!has(&r.warnings, "wrap it as /bin/sh"));
        assert!(has(
            &r.warnings,
            "runs commands without a shell; put it in a script"
        ));
    }

    #[test]
    fn timers_have_millisecond_resolution() {
        assert_eq!(parse_timer("3"), Some((Secs(3000), false)));
        assert_eq!(parse_timer("0.25"), Some((Secs(250), false)));
        assert_eq!(parse_timer(".5"), Some((Secs(500), false)));
        assert_eq!(parse_timer("2.71828"), Some((Secs(2718), true)));
        assert_eq!(parse_timer("0.0005"), Some((Secs(1), true)));
        assert_eq!(parse_timer("1.000"), Some((Secs(1000), false)));
        for bad in ["", ".", "-1", "1e3", "x", "1.2.3", "99999999999999999999"] {
            assert_eq!(parse_timer(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_are_kept_readable_and_checked_by_the_one_rule() {
        assert_eq!(block_name("VI_1", "vip"), "VI_1");
        assert_eq!(block_name("chk nginx\tnow", "vrrp_script"), "chk_nginx_now");
        // Anything Piranha reads back as one token stays: no second character set.
        assert_eq!(block_name("web/é:1{", "vip"), "web/é:1{");
        assert_eq!(block_name(r#"it's "x""#, "vip"), r#"it's_"x""#);
        assert_eq!(block_name(r#"'x""#, "vip"), "vip");
        assert_eq!(block_name("", "vip"), "vip");
        assert_eq!(block_name("}", "vip"), "vip");
        assert_eq!(
            block_name(&"a".repeat(100), "vip").chars().count(),
            MAX_NAME
        );
        let taken: HashSet<String> = ["x".to_string(), "x_2".to_string()].into();
        assert_eq!(unique_name("x".into(), &taken), "x_3");

        let r = imp("vrrp_script \"chk web\" {\n script /bin/true\n}\nvrrp_script \"'x\\\"\" {\n script /bin/true\n}\nvrrp_instance \"VI ext\" {\n virtual_ipaddress {\n  192.168.1.100/24\n  192.168.1.101/24\n }\n}\nvirtual_server fwmark 5 {\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n}\nvirtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n}\n");
        let c = &r.config;
        let checks: Vec<&str> = c.local_checks.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(checks, ["chk_web", "vrrp_script"]);
        let blocks: Vec<&str> = c.vrrp.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(blocks, ["VI_ext"]);
        let vs: Vec<&str> = c.virtuals.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(vs, ["fwmark_5", "vs_10_0_0_1_80"]);
        assert_eq!(c.virtuals[1].servers[0].name, "rs_10_0_0_2");
        let text = render(c);
        assert_eq!(parse(&text).unwrap().config, *c);
    }

    #[test]
    fn extra_words_after_a_value_are_dropped_as_keepalived_does() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n  HTTP_GET { url { path /status digest abc status_code 200 } }\n }\n}\n");
        let v = &r.config.virtuals[0];
        assert_eq!(v.check.check_path, Some(Text("/status".into())));
        assert_eq!(v.check.check_status, None);
        assert!(has(&r.warnings, "`path /status`: `digest abc status_code 200` after the value not imported (keepalived ignores it too)"));
    }
}

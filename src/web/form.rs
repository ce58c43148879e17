//! Form fields of the configuration pages, generated from the model's keyword tables
//! (label and widget per page, help text and default from the model), and the reverse:
//! a submitted form applied to a keyword block. Pure: no HTTP, no database.
//!
//! A field left blank unsets its keyword (its default then applies, and the keyword is
//! not written to `lvs.cf`), so a value the user never touched stays a default.

use std::collections::HashMap;

use crate::config::lexer::Token;
use crate::config::model::Keywords;
use crate::config::{value_tokens, Config, Diagnostic, KeywordDoc, Scope, Severity};
use crate::pulse::io::scripts;

/// How a keyword is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Widget {
    Text,
    /// A 0/1 keyword: "default", "yes" or "no" (blank keeps the default).
    Bool,
    /// One of these values (value, label), or blank for the default.
    Choice(&'static [(&'static str, &'static str)]),
    /// `IP DEVICE`, entered as two inputs (Piranha's "IP address" and "Device").
    AddrDev,
}

/// A keyword on a page.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub keyword: &'static str,
    pub label: &'static str,
    pub widget: Widget,
}

pub const fn text(keyword: &'static str, label: &'static str) -> FieldSpec {
    FieldSpec {
        keyword,
        label,
        widget: Widget::Text,
    }
}

pub const fn flag(keyword: &'static str, label: &'static str) -> FieldSpec {
    FieldSpec {
        keyword,
        label,
        widget: Widget::Bool,
    }
}

pub const fn choice(
    keyword: &'static str,
    label: &'static str,
    options: &'static [(&'static str, &'static str)],
) -> FieldSpec {
    FieldSpec {
        keyword,
        label,
        widget: Widget::Choice(options),
    }
}

pub const fn addr_dev(keyword: &'static str, label: &'static str) -> FieldSpec {
    FieldSpec {
        keyword,
        label,
        widget: Widget::AddrDev,
    }
}

/// The name of the second input of an [`Widget::AddrDev`] field.
pub fn device_input(keyword: &str) -> String {
    format!("{keyword}__device")
}

/// A submitted form: input name to value (the last one wins if repeated).
pub type Submitted = HashMap<String, String>;

/// One option of a select, display-ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// A field, display-ready for the templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Input name (the keyword).
    pub name: String,
    pub label: String,
    /// `text`, `select` or `addrdev`.
    pub kind: &'static str,
    pub value: String,
    /// The second input of an `addrdev` field.
    pub device: String,
    pub device_name: String,
    pub options: Vec<Choice>,
    /// The model's description, with the default and whether Piranha knew it.
    pub help: String,
    pub default: String,
    pub error: Option<String>,
}

fn doc_of<K: Keywords>(keyword: &str) -> &'static KeywordDoc {
    K::DOCS
        .iter()
        .find(|d| d.keyword == keyword)
        .unwrap_or_else(|| panic!("form field `{keyword}` is not a keyword of this block"))
}

/// What a field shows for a keyword's stored value: the canonical text, or for a
/// string taken whole the text between its quotes (escapes as written).
pub fn display<K: Keywords>(block: &K, keyword: &str) -> String {
    let Some(canonical) = block.get(keyword) else {
        return String::new();
    };
    if doc_of::<K>(keyword).verbatim {
        if let Ok(tokens) = value_tokens(&canonical) {
            if let [t] = tokens.as_slice() {
                return t.text.clone();
            }
        }
    }
    canonical
}

/// The fields of `specs` showing `block`, or what the user typed when `submitted` is
/// given (a refused form keeps its values), with `errors` by input name.
pub fn fields<K: Keywords>(
    specs: &[FieldSpec],
    block: &K,
    submitted: Option<&Submitted>,
    errors: &HashMap<String, String>,
) -> Vec<Field> {
    specs
        .iter()
        .map(|spec| {
            let doc = doc_of::<K>(spec.keyword);
            let typed = |name: &str| submitted.map(|s| s.get(name).cloned().unwrap_or_default());
            let stored = display(block, spec.keyword);
            let mut value = typed(spec.keyword).unwrap_or_else(|| stored.clone());
            let device_name = device_input(spec.keyword);
            let mut device = String::new();
            if spec.widget == Widget::AddrDev {
                match typed(&device_name) {
                    Some(d) => device = d,
                    None => {
                        let mut parts = stored.splitn(2, ' ');
                        value = parts.next().unwrap_or_default().to_string();
                        device = parts.next().unwrap_or_default().to_string();
                    }
                }
            }
            let options = match spec.widget {
                Widget::Bool => options(&value, doc.default, &[("1", "yes"), ("0", "no")]),
                Widget::Choice(list) => options(&value, doc.default, list),
                _ => Vec::new(),
            };
            let origin = if doc.extension {
                "lvs-director extension"
            } else {
                "Piranha"
            };
            // `apply` files a missing device under the device input's name: shown
            // with the pair, like the address's own errors.
            let error = errors
                .get(spec.keyword)
                .or_else(|| errors.get(&device_name))
                .cloned();
            Field {
                name: spec.keyword.to_string(),
                label: spec.label.to_string(),
                kind: match spec.widget {
                    Widget::Text => "text",
                    Widget::Bool | Widget::Choice(_) => "select",
                    Widget::AddrDev => "addrdev",
                },
                value,
                device,
                device_name,
                options,
                help: format!(
                    "{} Keyword `{}` ({origin}); default: {}.",
                    doc.doc, doc.keyword, doc.default
                ),
                default: doc.default.to_string(),
                error,
            }
        })
        .collect()
}

fn options(value: &str, default: &str, list: &[(&str, &str)]) -> Vec<Choice> {
    let mut out = vec![Choice {
        value: String::new(),
        label: format!("default ({default})"),
        selected: value.is_empty(),
    }];
    // Booleans may be stored as any integer (Piranha's strtol): show them as 1/0.
    // Blank is the default option alone: `strtol("")` would also select "no", and a
    // browser submits the last selected option, writing an explicit 0 (for `preempt`,
    // whose default is 1, the opposite of the default).
    let normalised = match value {
        "" => String::new(),
        v if list.iter().any(|(o, _)| *o == v) => v.to_string(),
        v if list == [("1", "yes"), ("0", "no")] => {
            if v.parse::<i64>().is_ok_and(|n| n != 0) {
                "1".into()
            } else {
                "0".into()
            }
        }
        v => v.to_string(),
    };
    out.extend(list.iter().map(|(v, l)| Choice {
        value: v.to_string(),
        label: l.to_string(),
        selected: *v == normalised,
    }));
    if !value.is_empty() && !list.iter().any(|(v, _)| *v == normalised) {
        // A value the page does not list (a hand-edited file): shown, kept, selectable.
        out.push(Choice {
            value: value.to_string(),
            label: value.to_string(),
            selected: true,
        });
    }
    out
}

/// Applies the fields of `specs` from `form` to `block`. Every field is tried, so all
/// the errors are reported at once (by input name); on any error `block` may be half
/// changed and must be thrown away.
pub fn apply<K: Keywords>(
    specs: &[FieldSpec],
    form: &Submitted,
    block: &mut K,
    errors: &mut HashMap<String, String>,
) {
    for spec in specs {
        let doc = doc_of::<K>(spec.keyword);
        let raw = form.get(spec.keyword).map(String::as_str).unwrap_or("");
        let mut text = if doc.verbatim {
            raw.to_string()
        } else {
            raw.trim().to_string()
        };
        if spec.widget == Widget::AddrDev {
            let device = form
                .get(&device_input(spec.keyword))
                .map(|d| d.trim())
                .unwrap_or("");
            if !text.is_empty() || !device.is_empty() {
                if text.is_empty() {
                    errors.insert(
                        spec.keyword.into(),
                        "the address is missing (a device was given)".into(),
                    );
                    continue;
                }
                if device.is_empty() {
                    errors.insert(
                        device_input(spec.keyword),
                        "the device is missing, e.g. eth0 or eth0:1".into(),
                    );
                    continue;
                }
                text = format!("{text} {device}");
            }
        }
        if text.is_empty() {
            block.unset(spec.keyword);
            continue;
        }
        let tokens = if doc.verbatim {
            if text.contains(['\n', '\r']) {
                errors.insert(
                    spec.keyword.into(),
                    "line breaks are not allowed (write \\n or \\r for send/expect)".into(),
                );
                continue;
            }
            Ok(vec![Token {
                text: text.clone(),
                quote: Some('"'),
                col: 0,
            }])
        } else {
            value_tokens(&text)
        };
        // The field specs come from the block's own keyword table.
        let result = tokens.and_then(|t| {
            block.set(spec.keyword, &t).unwrap_or_else(|| {
                Err(crate::config::value::ValueError::new(
                    0,
                    format!("`{}` is not a keyword of this block", spec.keyword),
                ))
            })
        });
        if let Err(e) = result {
            errors.insert(spec.keyword.into(), e.message);
        }
    }
}

/// The rules an edit is held to: [`crate::config::validate`], and the scripts
/// directory's rule for commands (the supervisor refuses any other command; here it is
/// said at the field, with the rule). That rule looks at the files named, the one
/// thing here that is not pure.
pub fn checked(c: &Config, scripts_dir: &std::path::Path) -> Vec<Diagnostic> {
    let mut d = crate::config::validate(c);
    d.extend(scripts::diagnostics(c, scripts_dir, Severity::Error));
    d
}

/// The validation errors caused by an edit: those of `after` that `before` did not
/// have (errors elsewhere that were already there do not block the edit). Each goes
/// to its field when it is about `scope` and a keyword on the page (`on_page`),
/// otherwise to the page's general list.
pub fn new_errors(
    before: &[Diagnostic],
    after: &[Diagnostic],
    scope: Option<Scope>,
    on_page: &[&str],
    fields: &mut HashMap<String, String>,
    general: &mut Vec<String>,
) {
    for d in after.iter().filter(|d| d.is_error()) {
        if before
            .iter()
            .any(|b| b.is_error() && b.message == d.message)
        {
            continue;
        }
        // An error of the block itself (its name, a duplicate) goes to the name field
        // when the page has one.
        let field = match (&d.keyword, scope) {
            (Some(k), Some(s)) if s == d.scope && on_page.contains(&k.as_str()) => Some(k.as_str()),
            (None, Some(s)) if s == d.scope && on_page.contains(&"name") => Some("name"),
            _ => None,
        };
        match field {
            Some(k) => {
                let message = d
                    .message
                    .rsplit_once("`: ")
                    .map_or(d.message.as_str(), |(_, m)| m)
                    .to_string();
                fields
                    .entry(k.to_string())
                    .and_modify(|e| {
                        e.push_str("; ");
                        e.push_str(&message)
                    })
                    .or_insert(message);
            }
            None => general.push(d.message.clone()),
        }
    }
}

/// For the pages' tests: every field of `specs` is a keyword of `block` (its
/// `KEYWORDS`), and none appears twice.
#[cfg(test)]
pub fn assert_fields_of(specs: &[&FieldSpec], keywords: &[&str], block: &str) {
    let mut seen = std::collections::HashSet::new();
    for s in specs {
        assert!(
            keywords.contains(&s.keyword),
            "{} is not a keyword of {block}",
            s.keyword
        );
        assert!(
            seen.insert(s.keyword),
            "{} twice on {block}'s form",
            s.keyword
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        validate, CheckSettings, Config, GlobalSettings, RealServer, VirtualServer, VirtualSettings,
    };

    const SPECS: &[FieldSpec] = &[
        text("port", "Port"),
        addr_dev("address", "Virtual IP"),
        flag("active", "Active"),
        choice("protocol", "Protocol", &[("tcp", "TCP"), ("udp", "UDP")]),
    ];

    fn form(pairs: &[(&str, &str)]) -> Submitted {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_form_sets_and_unsets_keywords() {
        let mut v = VirtualSettings::default();
        let mut errors = HashMap::new();
        apply(
            SPECS,
            &form(&[
                ("port", " 443 "),
                ("address", "192.0.2.1"),
                ("address__device", "eth0:1"),
                ("active", "1"),
                ("protocol", ""),
            ]),
            &mut v,
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(v.get("port").as_deref(), Some("443"));
        assert_eq!(v.get("address").as_deref(), Some("192.0.2.1 eth0:1"));
        assert_eq!(v.active, Some(true));
        assert_eq!(v.protocol, None, "blank keeps the default");

        // Blank unsets what was there.
        apply(SPECS, &form(&[("port", "")]), &mut v, &mut errors);
        assert_eq!(v.port, None);
        assert_eq!(v.address, None);
    }

    #[test]
    fn every_bad_field_is_reported_by_name() {
        let mut v = VirtualSettings::default();
        let mut errors = HashMap::new();
        apply(
            SPECS,
            &form(&[
                ("port", "99999999"),
                ("address", ""),
                ("address__device", "eth0"),
                ("active", "maybe"),
                ("protocol", "icmp"),
            ]),
            &mut v,
            &mut errors,
        );
        let mut names: Vec<_> = errors.keys().cloned().collect();
        names.sort();
        assert_eq!(
            names,
            ["active", "address", "port", "protocol"],
            "{errors:?}"
        );
        assert!(errors["address"].contains("address is missing"));

        let mut errors = HashMap::new();
        apply(
            SPECS,
            &form(&[("address", "192.0.2.1")]),
            &mut v,
            &mut errors,
        );
        assert!(errors["address__device"].contains("device is missing"));
    }

    #[test]
    fn strings_are_taken_whole_and_shown_without_quotes() {
        const CHECKS: &[FieldSpec] = &[
            text("send", "Send"),
            text("expect", "Expect"),
            text("send_program", "Program"),
        ];
        let mut c = CheckSettings::default();
        let mut errors = HashMap::new();
        let typed = form(&[
            ("send", "GET / HTTP/1.0\\r\\n\\r\\n"),
            ("expect", "say \"hi\" # not a comment"),
            ("send_program", "/usr/local/bin/check --host %h 'x y'"),
        ]);
        apply(CHECKS, &typed, &mut c, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.send.as_ref().unwrap().0, "GET / HTTP/1.0\r\n\r\n");
        assert_eq!(c.expect.as_ref().unwrap().0, "say \"hi\" # not a comment");
        assert_eq!(
            c.send_program.as_ref().unwrap().0,
            "/usr/local/bin/check --host %h 'x y'"
        );
        // Shown as typed (a quote in nanny's escaped form), so saving the page again
        // changes nothing.
        assert_eq!(display(&c, "send"), typed["send"]);
        assert_eq!(display(&c, "send_program"), typed["send_program"]);
        assert_eq!(display(&c, "expect"), "say \\\"hi\\\" # not a comment");
        let before = c.clone();
        let shown: Submitted = CHECKS
            .iter()
            .map(|s| (s.keyword.to_string(), display(&c, s.keyword)))
            .collect();
        apply(CHECKS, &shown, &mut c, &mut errors);
        assert_eq!(c, before);

        apply(CHECKS, &form(&[("send", "a\nb")]), &mut c, &mut errors);
        assert!(errors["send"].contains("line breaks"));
    }

    #[test]
    fn fields_show_stored_values_or_what_was_typed() {
        let mut v = VirtualSettings::default();
        let mut errors = HashMap::new();
        apply(
            SPECS,
            &form(&[
                ("address", "192.0.2.1"),
                ("address__device", "eth0:1"),
                ("active", "1"),
            ]),
            &mut v,
            &mut errors,
        );
        let shown = fields(SPECS, &v, None, &HashMap::new());
        assert_eq!(shown[1].value, "192.0.2.1");
        assert_eq!(shown[1].device, "eth0:1");
        assert_eq!(shown[1].kind, "addrdev");
        let active: Vec<_> = shown[2].options.iter().filter(|o| o.selected).collect();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].value, "1");
        assert!(shown[3].options[0].selected, "protocol unset: the default");
        assert!(shown[3].options[0].label.contains("tcp"));
        assert!(shown[0].help.contains("default: 80"));

        let typed = form(&[("port", "http-alt!"), ("address", "x")]);
        let errors: HashMap<_, _> = [("port".to_string(), "bad port".to_string())].into();
        let shown = fields(SPECS, &v, Some(&typed), &errors);
        assert_eq!(shown[0].value, "http-alt!");
        assert_eq!(shown[0].error.as_deref(), Some("bad port"));
        assert_eq!(shown[1].value, "x");
        assert_eq!(shown[1].device, "", "what was typed, not the stored device");
    }

    #[test]
    fn a_value_the_page_does_not_list_is_kept_selectable() {
        let mut v = VirtualSettings::default();
        v.set("protocol", &value_tokens("sctp").unwrap());
        let shown = fields(SPECS, &v, None, &HashMap::new());
        let selected: Vec<_> = shown[3].options.iter().filter(|o| o.selected).collect();
        assert_eq!(selected.len(), 1);
        assert_eq!(selected[0].value, "sctp");
    }

    fn config_with_two_services() -> Config {
        let mut c = Config {
            global: GlobalSettings::default(),
            ..Config::default()
        };
        for (name, addr) in [("a", "192.0.2.1 eth0"), ("b", "192.0.2.2 eth0")] {
            let mut v = VirtualServer {
                name: name.into(),
                ..VirtualServer::default()
            };
            v.settings.set("address", &value_tokens(addr).unwrap());
            v.settings.set("active", &value_tokens("1").unwrap());
            let mut r = RealServer {
                name: "r".into(),
                ..RealServer::default()
            };
            r.settings
                .set("address", &value_tokens("10.0.0.1").unwrap());
            v.servers.push(r);
            c.virtuals.push(v);
        }
        c
    }

    #[test]
    fn only_the_errors_an_edit_causes_block_it() {
        let before_config = config_with_two_services();
        let before = validate(&before_config);
        assert!(before.iter().all(|d| !d.is_error()), "{before:?}");
        // Virtual b moves onto a's address and port: a duplicate service.
        let mut after_config = before_config.clone();
        after_config.virtuals[1]
            .settings
            .set("address", &value_tokens("192.0.2.1 eth0").unwrap());
        after_config.virtuals[1]
            .settings
            .set("sorry_server", &value_tokens("::1").unwrap());
        let after = validate(&after_config);
        let (mut fields, mut general) = (HashMap::new(), Vec::new());
        new_errors(
            &before,
            &after,
            Some(Scope::Virtual(1)),
            &["address", "port", "sorry_server"],
            &mut fields,
            &mut general,
        );
        assert!(
            !fields.is_empty() || !general.is_empty(),
            "the edit must be refused: {after:?}"
        );
        // Errors that were already there do not count.
        let (mut f2, mut g2) = (HashMap::new(), Vec::new());
        new_errors(
            &after,
            &after,
            Some(Scope::Virtual(1)),
            &[],
            &mut f2,
            &mut g2,
        );
        assert!(f2.is_empty() && g2.is_empty());
    }
}

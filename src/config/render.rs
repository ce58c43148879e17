//! [`Config`] → canonical `lvs.cf` text, in the layout Piranha's GUI wrote: globals,
//! then blocks, one `keyword = value` per line, `port` before the `server` blocks.
//! Extensions appear only when set, so a Piranha-only model renders a Piranha file.

use std::fmt::Write;

use super::model::*;

const INDENT: &str = "    ";

/// Renders and proves that the text reads back to the same model: the form used for
/// anything written to disk, so a model that no longer round-trips (a bug, or a value
/// `validate` should have refused) is never handed to the supervisor.
pub fn render_checked(c: &Config) -> Result<String, RenderError> {
    let text = render(c);
    match crate::config::parse(&text) {
        Ok(p) if p.config == *c => Ok(text),
        Ok(_) => Err(RenderError::Different),
        Err(errors) => Err(RenderError::Unreadable(
            errors.first().map(ToString::to_string).unwrap_or_default(),
        )),
    }
}

/// Why a rendering was not handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the rendered lvs.cf reads back as a different configuration")]
    Different,
    #[error("the rendered lvs.cf does not parse: {0}")]
    Unreadable(String),
}

/// Renders the whole configuration.
pub fn render(c: &Config) -> String {
    let mut out = String::new();
    let mut keys = Vec::new();
    // The parser never files comments under the global BLOCK key; a program might.
    comment_lines(&mut out, 0, c.comments.get(Comments::BLOCK));
    for (kw, v) in c.global.entries() {
        line(&mut out, 0, &c.comments, kw, &format!("{kw} = {v}"));
        keys.push(kw);
    }
    for f in &c.floating {
        block(
            &mut out,
            0,
            "floating",
            &f.name,
            &f.comments,
            &[&f.settings.entries()],
        );
    }
    for l in &c.local_checks {
        block(
            &mut out,
            0,
            "local_check",
            &l.name,
            &l.comments,
            &[&l.settings.entries(), &l.check.entries()],
        );
    }
    for i in &c.vrrp {
        block(
            &mut out,
            0,
            "vrrp",
            &i.name,
            &i.comments,
            &[&i.settings.entries()],
        );
    }
    for v in &c.virtuals {
        virtual_block(&mut out, "virtual", v);
    }
    for v in &c.failovers {
        virtual_block(&mut out, "failover", v);
    }
    orphans(&mut out, 0, &c.comments, &keys);
    comment_lines(&mut out, 0, c.comments.get(Comments::END));
    if out.is_empty() {
        // Piranha refuses an empty file; one blank line reads back as the empty model.
        out.push('\n');
    }
    out
}

fn virtual_block(out: &mut String, kind: &str, v: &VirtualServer) {
    let entries = [v.settings.entries(), v.check.entries()];
    comment_lines(out, 0, v.comments.get(Comments::BLOCK));
    let _ = writeln!(out, "{kind} {} {{", name(&v.name));
    body(out, 1, &v.comments, &[&entries[0], &entries[1]]);
    for s in &v.servers {
        block(
            out,
            1,
            "server",
            &s.name,
            &s.comments,
            &[&s.settings.entries(), &s.check.entries()],
        );
    }
    comment_lines(out, 1, v.comments.get(Comments::END));
    out.push_str("}\n");
}

fn block(
    out: &mut String,
    depth: usize,
    kind: &str,
    name: &str,
    comments: &Comments,
    groups: &[&Vec<(&'static str, String)>],
) {
    comment_lines(out, depth, comments.get(Comments::BLOCK));
    let _ = writeln!(
        out,
        "{}{kind} {} {{",
        INDENT.repeat(depth),
        self::name(name)
    );
    body(out, depth + 1, comments, groups);
    comment_lines(out, depth + 1, comments.get(Comments::END));
    let _ = writeln!(out, "{}}}", INDENT.repeat(depth));
}

fn body(
    out: &mut String,
    depth: usize,
    comments: &Comments,
    groups: &[&Vec<(&'static str, String)>],
) {
    let mut keys = Vec::new();
    for (kw, v) in groups.iter().flat_map(|g| g.iter()) {
        line(out, depth, comments, kw, &format!("{kw} = {v}"));
        keys.push(*kw);
    }
    orphans(out, depth, comments, &keys);
}

/// A block name as written; `config::validate` reports names that cannot be written.
fn name(n: &str) -> String {
    render_name(n).unwrap_or_else(|| format!("\"{n}\""))
}

fn line(out: &mut String, depth: usize, comments: &Comments, kw: &str, text: &str) {
    comment_lines(out, depth, comments.get(kw));
    let _ = writeln!(out, "{}{text}", INDENT.repeat(depth));
}

/// Comments whose keyword is no longer set are kept rather than dropped.
fn orphans(out: &mut String, depth: usize, comments: &Comments, keys: &[&str]) {
    for (k, lines) in &comments.0 {
        if k != Comments::BLOCK && k != Comments::END && !keys.contains(&k.as_str()) {
            comment_lines(out, depth, lines);
        }
    }
}

fn comment_lines(out: &mut String, depth: usize, lines: &[String]) {
    for l in lines {
        let _ = writeln!(out, "{}#{l}", INDENT.repeat(depth));
    }
}

/// The configuration as `lvs.cf` with the serial set to `serial` (so that two
/// renderings differ only where the configuration does).
pub fn render_with_serial(config: &Config, serial: u32) -> String {
    let mut c = config.clone();
    c.global.serial_no = Some(serial);
    render(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_model_renders_to_a_file_that_reads_back() {
        let text = render(&Config::default());
        assert_eq!(text, "\n");
        let again = crate::config::parse(&text).unwrap();
        assert_eq!(again.config, Config::default());
        // Found by the fuzzer: a file of blank lines.
        assert_eq!(
            crate::config::parse(" \n\t\r\n").unwrap().config,
            Config::default()
        );
    }

    /// Every name the rule accepts is written so that it reads back as that block's
    /// name: a leading `=` once rendered bare (`virtual =web {`, an assignment to the
    /// parser), so a name the admin UI saved could not be exported or applied.
    #[test]
    fn every_accepted_name_reads_back_in_a_block_header() {
        for name in [
            "=web",
            "=",
            "==",
            "= web",
            "=\"x\"",
            "a=b",
            "web=",
            "web{",
            "{web",
            "}web",
            "#web",
            "web#",
            "it's",
            "say \"hi\"",
            "[server_name]",
            "web farm",
            "w\\",
        ] {
            assert_eq!(name_problem(name), None, "{name:?}");
            let written = render_name(name).unwrap();
            let c = Config {
                virtuals: vec![VirtualServer {
                    name: name.into(),
                    servers: vec![RealServer {
                        name: name.into(),
                        ..RealServer::default()
                    }],
                    ..VirtualServer::default()
                }],
                floating: vec![FloatingAddress {
                    name: name.into(),
                    ..FloatingAddress::default()
                }],
                local_checks: vec![LocalCheck {
                    name: name.into(),
                    ..LocalCheck::default()
                }],
                ..Config::default()
            };
            let text = render_checked(&c).unwrap_or_else(|e| panic!("{name:?} as {written}: {e}"));
            assert!(text.contains(&format!("virtual {written} {{")), "{text}");
        }
        assert_eq!(render_name("=web").as_deref(), Some("\"=web\""));
        assert_eq!(render_name("web").as_deref(), Some("web"));
        // What no quoting can write back is refused by the rule itself.
        for bad in ["", "a\nb", "say \"it's\""] {
            assert!(render_name(bad).is_none(), "{bad:?}");
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
    }
}

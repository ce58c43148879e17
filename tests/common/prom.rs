//! A strict reader of the Prometheus text exposition format (version 0.0.4), for the
//! tests of `/metrics`: it refuses what Prometheus would refuse and what the format
//! leaves loose (a sample without `# TYPE`, a family split in two, a duplicate
//! series, an unknown escape, a negative counter, a missing final newline). Shared by
//! the unit tests of src/web/metrics.rs and tests/metrics.rs through `#[path]`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: Option<String>,
    /// counter, gauge, histogram, summary or untyped.
    pub kind: String,
    pub samples: Vec<Sample>,
}

fn is_name(s: &str, colons: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    match chars.next() {
        Some(c) if first_ok(c) => {}
        _ => return false,
    }
    chars.all(|c| first_ok(c) || c.is_ascii_digit())
}

fn unescape(s: &str, quote: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            other => return Err(format!("unknown escape \\{other:?} in {s:?}")),
        }
    }
    Ok(out)
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') =>
        {
            Err(format!("not a number: {s:?}"))
        }
        _ => s.parse().map_err(|e| format!("not a number: {s:?} ({e})")),
    }
}

/// `name{labels} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let end = line
        .find(['{', ' ', '\t'])
        .ok_or_else(|| format!("no value: {line:?}"))?;
    let name = &line[..end];
    if !is_name(name, true) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest
                .find('=')
                .ok_or_else(|| format!("label without '=': {line:?}"))?;
            let key = rest[..eq].trim_end();
            if !is_name(key, false) || key.starts_with("__") {
                return Err(format!("bad label name {key:?} in {line:?}"));
            }
            rest = rest[eq + 1..].trim_start();
            let r = rest
                .strip_prefix('"')
                .ok_or_else(|| format!("label value not quoted: {line:?}"))?;
            // The closing quote: the first one not escaped.
            let mut close = None;
            let mut escaped = false;
            for (i, c) in r.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        close = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let close = close.ok_or_else(|| format!("unterminated label value: {line:?}"))?;
            let value = unescape(&r[..close], true)?;
            if labels.insert(key.to_string(), value).is_some() {
                return Err(format!("label {key:?} twice in {line:?}"));
            }
            rest = r[close + 1..].trim_start_matches([' ', '\t']);
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(format!(
                    "expected ',' or '}}' after label {key:?}: {line:?}"
                ));
            }
        }
    }
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("no blank before the value: {line:?}"));
    }
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let value = match fields.as_slice() {
        [v] => parse_value(v)?,
        [v, ts] => {
            ts.parse::<i64>()
                .map_err(|_| format!("bad timestamp {ts:?}: {line:?}"))?;
            parse_value(v)?
        }
        _ => return Err(format!("expected a value and maybe a timestamp: {line:?}")),
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn belongs(family: &Family, sample: &str) -> bool {
    let suffixes: &[&str] = match family.kind.as_str() {
        "histogram" => &["_bucket", "_sum", "_count"],
        "summary" => &["", "_sum", "_count"],
        _ => &[""],
    };
    suffixes
        .iter()
        .any(|s| sample.strip_suffix(s) == Some(family.name.as_str()))
}

/// Reads a whole exposition; the families in order.
pub fn parse(text: &str) -> Result<Vec<Family>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    let mut families: Vec<Family> = Vec::new();
    let mut series = BTreeSet::new();
    let mut closed = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            let (word, rest) = comment.split_once([' ', '\t']).unwrap_or((comment, ""));
            if word != "HELP" && word != "TYPE" {
                continue;
            }
            let rest = rest.trim_start();
            let (name, arg) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            if !is_name(name, true) {
                return Err(at(format!("bad metric name {name:?} in # {word}")));
            }
            // A new family starts unless this line describes the current one.
            let current = families.last().is_some_and(|f| f.name == name);
            if !current {
                if closed.contains(name) {
                    return Err(at(format!("family {name} appears twice")));
                }
                if let Some(f) = families.last() {
                    closed.insert(f.name.clone());
                }
                families.push(Family {
                    name: name.to_string(),
                    help: None,
                    kind: String::new(),
                    samples: Vec::new(),
                });
            }
            let f = families.last_mut().expect("pushed");
            if word == "HELP" {
                if f.help.is_some() {
                    return Err(at(format!("a second # HELP for {name}")));
                }
                f.help = Some(unescape(arg, false).map_err(at)?);
            } else {
                if !f.kind.is_empty() {
                    return Err(at(format!("a second # TYPE for {name}")));
                }
                if !f.samples.is_empty() {
                    return Err(at(format!("# TYPE of {name} after its samples")));
                }
                let kind = arg.trim();
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(at(format!("unknown type {kind:?} of {name}")));
                }
                f.kind = kind.to_string();
            }
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let Some(f) = families
            .last_mut()
            .filter(|f| !f.kind.is_empty() && belongs(f, &sample.name))
        else {
            return Err(at(format!(
                "sample {} outside a family declared by # TYPE",
                sample.name
            )));
        };
        if f.kind == "counter" && (sample.value.is_nan() || sample.value < 0.0) {
            return Err(at(format!("counter {} is {}", sample.name, sample.value)));
        }
        if !series.insert((sample.name.clone(), sample.labels.clone())) {
            return Err(at(format!(
                "duplicate series {} {:?}",
                sample.name, sample.labels
            )));
        }
        f.samples.push(sample);
    }
    if let Some(f) = families.iter().find(|f| f.kind.is_empty()) {
        return Err(format!("family {} has no # TYPE", f.name));
    }
    Ok(families)
}

/// The family named `name`.
#[track_caller]
pub fn family<'a>(families: &'a [Family], name: &str) -> &'a Family {
    families
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

/// The value of the series `name` with exactly these labels, if present.
pub fn find(families: &[Family], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    families
        .iter()
        .flat_map(|f| &f.samples)
        .find(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
}

/// The value of the series `name` with exactly these labels.
#[track_caller]
pub fn value(families: &[Family], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(families, name, labels).unwrap_or_else(|| panic!("no series {name} {labels:?}"))
}

#[cfg(test)]
mod strictness {
    use super::*;

    #[test]
    fn it_refuses_what_prometheus_would() {
        let ok = "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 3\n";
        let f = parse(ok).unwrap();
        assert_eq!(value(&f, "a_total", &[("x", "q\"\\\n")]), 3.0);
        for bad in [
            "# TYPE a gauge\na 1",                          // no final newline
            "a 1\n",                                        // no TYPE
            "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n", // duplicate
            "# TYPE a gauge\na{x=\"\\t\"} 1\n",             // unknown escape
            "# TYPE a gauge\na{x=\"1} 1\n",                 // unterminated
            "# TYPE a counter\na -1\n",                     // negative counter
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n", // split
            "# TYPE a gauge\nb 1\n",                        // other name
            "# TYPE a gauge\na{1x=\"1\"} 1\n",              // label name
            "# TYPE a gauge\na one\n",                      // value
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}

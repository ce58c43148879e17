//! Which commands the supervisor runs. `active_cmd`, `inactive_cmd`, `notify_command`,
//! `send_program`, `load_monitor` (and `rsh_command`, which it runs) are run as root,
//! and the admin UI writes them into `lvs.cf` as an unprivileged user: whoever is an
//! administrator there (or can write `lvs.cf`) would otherwise be root, heartbeat key
//! included.
//!
//! The boundary: a command may only name an executable in the scripts directory
//! ([`DEFAULT_SCRIPTS_DIR`], or `pulse --scripts-dir`, never `lvs.cf`), given as an
//! absolute path, where that directory, every folder above it and the file belong to
//! root and only root can change them (symbolic links and `..` resolved, each link
//! root's too). Root decides what may run by putting it there; the configuration only
//! chooses among those programs and their arguments. Arguments cannot be trusted to be
//! harmless (`sh -c …`, `ssh -o ProxyCommand=…`), which is why the rule is on the
//! executable's place and not on the command line.
//!
//! A `lvs.cf` that only root could have written (a hand-written Piranha file) keeps
//! Piranha's freedom: [`Policy::Any`]. That holds only when the file read belongs to
//! root, is writable by root alone and has one link, and every folder and link on the
//! way to it is root's (a sticky folder such as `/etc/lvs-director` may be writable by
//! others: they cannot replace root's entries). A file the admin UI writes is owned by
//! its user, so the UI's path is always restricted.
//!
//! The rule is checked when a configuration is loaded (every offending keyword an
//! error naming its block) and again just before each command starts, so that a script
//! changed since is not run.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::config::diag::{Diagnostic, Scope, Severity};
use crate::config::value::LoadMonitor;
use crate::config::Config;

pub use crate::config::model::DEFAULT_SCRIPTS_DIR;

/// Symbolic links followed in one path, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// What commands a configuration may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Only executables in this directory that root alone can change.
    Scripts(PathBuf),
    /// Anything: the configuration is root's own (see the module documentation).
    Any,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::Scripts(PathBuf::from(DEFAULT_SCRIPTS_DIR))
    }
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("`{0}` is not an absolute path")]
    NotAbsolute(String),
    #[error("{0} is not in the scripts directory")]
    Outside(String),
    #[error("{path} leads to {resolved}, outside the scripts directory")]
    LeadsOutside { path: String, resolved: String },
    #[error("{path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path} belongs to uid {uid}, not root")]
    NotRoot { path: String, uid: u32 },
    #[error("{path} can be changed by others than root (mode {mode:o})")]
    Writable { path: String, mode: u32 },
    #[error("{0}: too many levels of symbolic links")]
    Loop(String),
    #[error("{0} is not a regular file")]
    NotFile(String),
    #[error("{0} is not executable")]
    NotExecutable(String),
    #[error("the scripts directory {dir} cannot be used: {why}")]
    Directory { dir: String, why: Box<ScriptError> },
}

/// The rule in one sentence, for messages that refuse a command.
pub fn rule(dir: &Path) -> String {
    format!(
        "commands run as root, so each must name an executable in {} (an absolute path) that belongs to root and that only root can change, in a folder only root can change",
        dir.display()
    )
}

impl Policy {
    /// The program to start for a command whose first word is `program`: the resolved
    /// path in the scripts directory (so that what was checked is what runs), or
    /// `program` itself under [`Policy::Any`] (searched in PATH, as Piranha did).
    pub fn check(&self, program: &str) -> Result<PathBuf, ScriptError> {
        let dir = match self {
            Policy::Any => return Ok(PathBuf::from(program)),
            Policy::Scripts(dir) => dir,
        };
        if !program.starts_with('/') {
            return Err(ScriptError::NotAbsolute(program.to_string()));
        }
        let in_dir = |p: &Path, dir: &Path| p.starts_with(dir) && p != dir;
        if !in_dir(&lexical(Path::new(program)), &lexical(dir)) {
            return Err(ScriptError::Outside(program.to_string()));
        }
        let directory = |why| ScriptError::Directory {
            dir: dir.display().to_string(),
            why: Box::new(why),
        };
        let real_dir = resolve(dir).map_err(directory)?;
        let m = metadata(&real_dir).map_err(directory)?;
        if !m.is_dir() {
            return Err(directory(ScriptError::NotFile(
                real_dir.display().to_string(),
            )));
        }
        // The scripts directory itself: writable by root alone, sticky or not (a
        // sticky folder lets others add programs).
        only_root_writes(&real_dir, &m).map_err(directory)?;
        let real = resolve(Path::new(program))?;
        if !in_dir(&real, &real_dir) {
            return Err(ScriptError::LeadsOutside {
                path: program.to_string(),
                resolved: real.display().to_string(),
            });
        }
        // Sub-folders of the scripts directory: the same.
        for sub in real
            .ancestors()
            .skip(1)
            .take_while(|a| *a != real_dir.as_path())
        {
            only_root_writes(sub, &metadata(sub)?)?;
        }
        let m = metadata(&real)?;
        if !m.is_file() {
            return Err(ScriptError::NotFile(real.display().to_string()));
        }
        if m.mode() & 0o111 == 0 {
            return Err(ScriptError::NotExecutable(real.display().to_string()));
        }
        Ok(real)
    }
}

fn metadata(p: &Path) -> Result<std::fs::Metadata, ScriptError> {
    std::fs::symlink_metadata(p).map_err(|e| ScriptError::Unreadable {
        path: p.display().to_string(),
        reason: e.to_string(),
    })
}

fn only_root_writes(p: &Path, m: &std::fs::Metadata) -> Result<(), ScriptError> {
    if m.uid() != 0 {
        return Err(ScriptError::NotRoot {
            path: p.display().to_string(),
            uid: m.uid(),
        });
    }
    if m.mode() & 0o022 != 0 {
        return Err(ScriptError::Writable {
            path: p.display().to_string(),
            mode: m.mode() & 0o7777,
        });
    }
    Ok(())
}

/// `p` with `.` and `..` taken away as written (`/a/b/../c` is `/a/c`), for the first,
/// plain reading of "in the directory"; [`resolve`] then follows the links.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The physical path of `path` (absolute), following links and `..` one component at
/// a time as the kernel does, and refusing anything on the way that someone other than
/// root could change: an entry not root's, a folder writable by others unless sticky
/// (there others cannot rename or remove root's entries), a link not root's (in a
/// sticky folder its owner could replace it).
fn resolve(path: &Path) -> Result<PathBuf, ScriptError> {
    let shown = path.display().to_string();
    if !path.is_absolute() {
        return Err(ScriptError::NotAbsolute(shown));
    }
    let mut resolved = PathBuf::from("/");
    node(&resolved, &metadata(&resolved)?)?;
    // Components still to walk, the next one last.
    let mut pending: Vec<OsString> = Vec::new();
    let push = |pending: &mut Vec<OsString>, p: &Path| {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => pending.push(n.to_os_string()),
                Component::ParentDir => pending.push("..".into()),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
    };
    push(&mut pending, path);
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            // `resolved` holds no link: its parent is the physical parent.
            resolved.pop();
            continue;
        }
        let next = resolved.join(&c);
        let m = metadata(&next)?;
        if m.file_type().is_symlink() {
            if m.uid() != 0 {
                return Err(ScriptError::NotRoot {
                    path: next.display().to_string(),
                    uid: m.uid(),
                });
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(ScriptError::Loop(shown));
            }
            let to = std::fs::read_link(&next).map_err(|e| ScriptError::Unreadable {
                path: next.display().to_string(),
                reason: e.to_string(),
            })?;
            if to.is_absolute() {
                resolved = PathBuf::from("/");
            }
            push(&mut pending, &to);
            continue;
        }
        node(&next, &m)?;
        resolved = next;
    }
    Ok(resolved)
}

/// One entry met on the way: root's, and writable by root alone (a folder may be
/// writable by others when it is sticky).
fn node(p: &Path, m: &std::fs::Metadata) -> Result<(), ScriptError> {
    const STICKY: u32 = 0o1000;
    if m.uid() != 0 {
        return Err(ScriptError::NotRoot {
            path: p.display().to_string(),
            uid: m.uid(),
        });
    }
    if m.mode() & 0o022 != 0 && !(m.is_dir() && m.mode() & STICKY != 0) {
        return Err(ScriptError::Writable {
            path: p.display().to_string(),
            mode: m.mode() & 0o7777,
        });
    }
    Ok(())
}

/// `lvs.cf` as read, and the policy its commands fall under.
#[derive(Debug)]
pub struct ConfigFile {
    pub bytes: Vec<u8>,
    pub policy: Policy,
    /// Why the commands are restricted (for the log), `None` under [`Policy::Any`].
    pub restricted_because: Option<String>,
}

/// Reads `lvs.cf` at `path`. Its commands may be anything only when `trust_root_file`
/// and the file is root's alone (see the module documentation), checked on the file
/// actually read; otherwise they are restricted to `scripts_dir`.
pub fn read_config(
    path: &Path,
    scripts_dir: &Path,
    trust_root_file: bool,
) -> std::io::Result<ConfigFile> {
    let restricted = |bytes, why: String| ConfigFile {
        bytes,
        policy: Policy::Scripts(scripts_dir.to_path_buf()),
        restricted_because: Some(why),
    };
    if !trust_root_file {
        return Ok(restricted(
            std::fs::read(path)?,
            "commands are always restricted in this mode".into(),
        ));
    }
    let absolute = std::path::absolute(path)?;
    let physical = match resolve(&absolute) {
        Ok(p) => p,
        Err(e) => return Ok(restricted(std::fs::read(path)?, e.to_string())),
    };
    // The very file read is the one judged: opened without following a link (the path
    // was just resolved) and looked at through its descriptor.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&physical)?;
    let m = f.metadata()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let why = if !m.is_file() {
        Some(format!("{} is not a regular file", physical.display()))
    } else if m.uid() != 0 {
        Some(format!("{} belongs to uid {}", physical.display(), m.uid()))
    } else if m.mode() & 0o022 != 0 {
        Some(format!(
            "{} can be written by others than root (mode {:o})",
            physical.display(),
            m.mode() & 0o7777
        ))
    } else if m.nlink() != 1 {
        Some(format!(
            "{} has {} hard links",
            physical.display(),
            m.nlink()
        ))
    } else {
        None
    };
    Ok(match why {
        Some(why) => restricted(bytes, why),
        None => ConfigFile {
            bytes,
            policy: Policy::Any,
            restricted_because: None,
        },
    })
}

/// One command a configuration holds: where, which keyword, the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandUse {
    pub scope: Scope,
    pub keyword: &'static str,
    pub line: String,
}

/// Every command `c` may run, whether its block is active or not (a block is one
/// click away from active in the admin UI). The default `rsh_command` (`rsh`) counts
/// when some virtual server uses `load_monitor = uptime`. FOS `start_cmd`/`stop_cmd`
/// and `client_monitor` are never run and do not count.
pub fn commands(c: &Config) -> Vec<CommandUse> {
    let mut out = Vec::new();
    let mut add = |scope, keyword, line: Option<&str>| {
        if let Some(line) = line {
            out.push(CommandUse {
                scope,
                keyword,
                line: line.to_string(),
            });
        }
    };
    let g = &c.global;
    add(
        Scope::Global,
        "active_cmd",
        g.active_cmd.as_ref().map(|t| t.0.as_str()),
    );
    add(
        Scope::Global,
        "inactive_cmd",
        g.inactive_cmd.as_ref().map(|t| t.0.as_str()),
    );
    add(
        Scope::Global,
        "notify_command",
        g.notify_command.as_ref().map(|t| t.0.as_str()),
    );
    let uptime = c
        .virtuals
        .iter()
        .any(|v| v.settings.load_monitor == Some(LoadMonitor::Uptime));
    let rsh = g.rsh_command.as_ref().map(|t| t.0.as_str());
    add(
        Scope::Global,
        "rsh_command",
        rsh.or(uptime.then_some("rsh")),
    );
    for (i, l) in c.local_checks.iter().enumerate() {
        add(
            Scope::LocalCheck(i),
            "send_program",
            l.check.send_program.as_ref().map(|t| t.0.as_str()),
        );
    }
    for (i, vs) in c.virtuals.iter().enumerate() {
        if let Some(LoadMonitor::Command(line)) = &vs.settings.load_monitor {
            add(Scope::Virtual(i), "load_monitor", Some(line));
        }
        add(
            Scope::Virtual(i),
            "send_program",
            vs.check.send_program.as_ref().map(|t| t.0.as_str()),
        );
        for (keyword, t) in [
            ("quorum_up", &vs.settings.quorum_up),
            ("quorum_down", &vs.settings.quorum_down),
        ] {
            add(Scope::Virtual(i), keyword, t.as_ref().map(|t| t.0.as_str()));
        }
        for (j, rs) in vs.servers.iter().enumerate() {
            add(
                Scope::Server(i, j),
                "send_program",
                rs.check.send_program.as_ref().map(|t| t.0.as_str()),
            );
            for (keyword, t) in [
                ("notify_up", &rs.settings.notify_up),
                ("notify_down", &rs.settings.notify_down),
            ] {
                add(
                    Scope::Server(i, j),
                    keyword,
                    t.as_ref().map(|t| t.0.as_str()),
                );
            }
        }
    }
    for (i, inst) in c.vrrp.iter().enumerate() {
        let s = &inst.settings;
        for (keyword, t) in [
            ("notify_master", &s.notify_master),
            ("notify_backup", &s.notify_backup),
            ("notify_fault", &s.notify_fault),
            ("notify", &s.notify),
        ] {
            add(Scope::Vrrp(i), keyword, t.as_ref().map(|t| t.0.as_str()));
        }
    }
    out
}

/// The problem of one command line under `policy`, if any. A line that cannot be
/// split into words is left to the keyword's own checks.
pub fn problem(line: &str, policy: &Policy) -> Option<ScriptError> {
    let words = crate::pulse::logic::argv::split_words(line).ok()?;
    policy.check(words.first()?).err()
}

/// Every command of `c` that `policy` refuses, as `(block, keyword, message)`; the
/// message names the command's path, why, and the rule. Each distinct program is
/// looked at once.
pub fn refusals(c: &Config, policy: &Policy) -> Vec<(Scope, &'static str, String)> {
    let Policy::Scripts(dir) = policy else {
        return Vec::new();
    };
    let mut seen: HashMap<String, Option<ScriptError>> = HashMap::new();
    let mut out = Vec::new();
    for u in commands(c) {
        let Some(program) = crate::pulse::logic::argv::split_words(&u.line)
            .ok()
            .and_then(|w| w.into_iter().next())
        else {
            continue;
        };
        let verdict = seen
            .entry(program.clone())
            .or_insert_with(|| policy.check(&program).err());
        if let Some(e) = verdict {
            let default = if u.keyword == "rsh_command" && c.global.rsh_command.is_none() {
                " (the default rsh_command, run by load_monitor = uptime)"
            } else {
                ""
            };
            out.push((u.scope, u.keyword, format!("{e}{default}: {}", rule(dir))));
        }
    }
    out
}

/// [`refusals`] as diagnostics (`severity`), for the admin UI's forms and Apply.
pub fn diagnostics(c: &Config, dir: &Path, severity: Severity) -> Vec<Diagnostic> {
    refusals(c, &Policy::Scripts(dir.to_path_buf()))
        .into_iter()
        .map(|(scope, keyword, why)| {
            let path = scope.describe(c);
            let at = if path.is_empty() {
                format!("`{keyword}`")
            } else {
                format!("{path}: `{keyword}`")
            };
            Diagnostic {
                severity,
                scope,
                keyword: Some(keyword.to_string()),
                message: format!("{at}: {why}"),
                pos: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{chown, symlink, PermissionsExt};

    use super::*;

    fn root() -> bool {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            eprintln!("not root: the ownership rules cannot be set up; skipped");
        }
        root
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A scripts directory in a root-owned temporary folder, with an executable `ok`.
    fn scripts() -> (tempfile::TempDir, PathBuf) {
        let base = tempfile::tempdir().unwrap();
        chmod(base.path(), 0o755);
        let dir = base.path().join("scripts");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o755);
        let ok = dir.join("ok");
        std::fs::write(&ok, "#!/bin/sh\nexit 0\n").unwrap();
        chmod(&ok, 0o755);
        (base, dir)
    }

    fn s(p: &Path) -> String {
        p.display().to_string()
    }

    #[test]
    fn only_root_owned_executables_in_the_directory_pass() {
        if !root() {
            return;
        }
        let (base, dir) = scripts();
        let policy = Policy::Scripts(dir.clone());
        let ok = dir.join("ok");
        assert_eq!(policy.check(&s(&ok)), Ok(ok.clone()));
        // `..` that stays inside is fine; one that leaves is not.
        assert_eq!(
            policy.check(&format!("{}/../scripts/ok", s(&dir))),
            Ok(ok.clone())
        );
        assert_eq!(
            policy.check(&format!("{}/../../../bin/sh", s(&dir))),
            Err(ScriptError::Outside(format!("{}/../../../bin/sh", s(&dir))))
        );
        assert!(matches!(
            policy.check("ok"),
            Err(ScriptError::NotAbsolute(_))
        ));
        assert!(matches!(
            policy.check("/bin/sh"),
            Err(ScriptError::Outside(_))
        ));
        assert!(matches!(
            policy.check(&s(&dir)),
            Err(ScriptError::Outside(_))
        ));

        // A link in the directory to a shell elsewhere is refused where it leads.
        symlink("/bin/sh", dir.join("sh")).unwrap();
        assert!(matches!(
            policy.check(&s(&dir.join("sh"))),
            Err(ScriptError::LeadsOutside { .. })
        ));
        // A root-owned link inside the directory to a script in it is followed.
        symlink("ok", dir.join("alias")).unwrap();
        assert_eq!(policy.check(&s(&dir.join("alias"))), Ok(ok.clone()));

        // A link someone else owns (in a sticky folder they could replace it).
        let theirs = dir.join("theirs");
        symlink("ok", &theirs).unwrap();
        std::os::unix::fs::lchown(&theirs, Some(1234), None).unwrap();
        assert!(matches!(
            policy.check(&s(&theirs)),
            Err(ScriptError::NotRoot { uid: 1234, .. })
        ));

        // The file: someone else's, writable by the group, not executable, a folder.
        let file = dir.join("file");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        chmod(&file, 0o755);
        chown(&file, Some(1234), None).unwrap();
        assert!(matches!(
            policy.check(&s(&file)),
            Err(ScriptError::NotRoot { .. })
        ));
        chown(&file, Some(0), None).unwrap();
        chmod(&file, 0o775);
        assert!(matches!(
            policy.check(&s(&file)),
            Err(ScriptError::Writable { mode: 0o775, .. })
        ));
        chmod(&file, 0o644);
        assert!(matches!(
            policy.check(&s(&file)),
            Err(ScriptError::NotExecutable(_))
        ));
        std::fs::create_dir(dir.join("sub")).unwrap();
        chmod(&dir.join("sub"), 0o777);
        std::fs::write(dir.join("sub/x"), "").unwrap();
        chmod(&dir.join("sub/x"), 0o755);
        assert!(matches!(
            policy.check(&s(&dir.join("sub/x"))),
            Err(ScriptError::Writable { .. })
        ));

        // The directory: sticky does not excuse it; missing; someone else's.
        chmod(&dir, 0o1777);
        assert!(matches!(
            policy.check(&s(&ok)),
            Err(ScriptError::Directory { .. })
        ));
        chmod(&dir, 0o755);
        chown(&dir, Some(1234), None).unwrap();
        let e = policy.check(&s(&ok)).unwrap_err();
        assert!(e.to_string().contains("cannot be used"), "{e}");
        chown(&dir, Some(0), None).unwrap();
        // A folder above it that others can write to (not sticky): they could swap it.
        chmod(base.path(), 0o777);
        assert!(matches!(
            policy.check(&s(&ok)),
            Err(ScriptError::Directory { .. })
        ));
        chmod(base.path(), 0o1777);
        assert_eq!(
            policy.check(&s(&ok)),
            Ok(ok.clone()),
            "a sticky folder above is fine"
        );
        let missing = Policy::Scripts(base.path().join("none"));
        assert!(matches!(
            missing.check(&s(&base.path().join("none/ok"))),
            Err(ScriptError::Directory { .. })
        ));

        // Piranha's freedom: anything, PATH included.
        assert_eq!(Policy::Any.check("sh"), Ok(PathBuf::from("sh")));
    }

    /// VRRP notify commands run as root like the others: the same rule applies.
    #[test]
    fn vrrp_notify_commands_are_held_to_the_rule() {
        let text = "vrrp VI_1 {\n    notify_master = \"/tmp/up %h\"\n    notify = /etc/x\n}\n";
        let c = crate::config::parse(text).unwrap().config;
        let found: Vec<(Scope, &str)> = commands(&c).iter().map(|u| (u.scope, u.keyword)).collect();
        assert_eq!(
            found,
            [
                (Scope::Vrrp(0), "notify_master"),
                (Scope::Vrrp(0), "notify")
            ]
        );
        let d = diagnostics(&c, Path::new("/nonexistent/scripts"), Severity::Error);
        assert_eq!(d.len(), 2);
        assert!(d[0]
            .message
            .starts_with("vrrp VI_1: `notify_master`: /tmp/up is not in the scripts directory"));
    }

    #[test]
    fn every_command_keyword_is_found_and_refusals_name_block_keyword_and_path() {
        let text =
            "serial_no = 1\nactive_cmd = \"/bin/sh -c 'cat /etc/lvs-director/heartbeat.key'\"\n\
            inactive_cmd = /nonexistent/scripts/down\nnotify_command = notify\n\
            local_check db {\n    send_program = /usr/bin/check-db\n}\n\
            virtual web {\n    load_monitor = uptime\n    send_program = \"/tmp/x %h\"\n\
            server rs1 {\n        address = 10.0.0.1\n        send_program = /tmp/y\n    }\n}\n\
            virtual api {\n    load_monitor = \"/usr/bin/agent %h\"\n}\n";
        let c = crate::config::parse(text).unwrap().config;
        let found: Vec<(Scope, &str)> = commands(&c).iter().map(|u| (u.scope, u.keyword)).collect();
        let lines: Vec<String> = commands(&c).into_iter().map(|u| u.line).collect();
        assert_eq!(
            lines,
            [
                "/bin/sh -c 'cat /etc/lvs-director/heartbeat.key'",
                "/nonexistent/scripts/down",
                "notify",
                "rsh",
                "/usr/bin/check-db",
                "/tmp/x %h",
                "/tmp/y",
                "/usr/bin/agent %h"
            ]
        );
        assert_eq!(found.len(), 8);
        assert_eq!(found[3], (Scope::Global, "rsh_command"));
        assert_eq!(found[5], (Scope::Virtual(0), "send_program"));
        assert_eq!(found[6], (Scope::Server(0, 0), "send_program"));
        assert_eq!(found[7], (Scope::Virtual(1), "load_monitor"));

        let dir = Path::new("/nonexistent/scripts");
        let d = diagnostics(&c, dir, Severity::Error);
        let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(d.len(), 8, "{messages:#?}");
        assert_eq!(
            messages[0],
            format!(
                "`active_cmd`: /bin/sh is not in the scripts directory: {}",
                rule(dir)
            )
        );
        assert!(messages[2].starts_with("`notify_command`: `notify` is not an absolute path"));
        assert!(messages[3].contains("(the default rsh_command, run by load_monitor = uptime)"));
        assert!(messages[6].starts_with(
            "virtual web, server rs1: `send_program`: /tmp/y is not in the scripts directory"
        ));
        assert!(messages[1].contains("the scripts directory /nonexistent/scripts cannot be used"));
        assert!(messages.iter().all(|m| m.contains("/nonexistent/scripts")));
        assert_eq!(d[6].keyword.as_deref(), Some("send_program"));
        assert_eq!(d[6].scope, Scope::Server(0, 0));
        assert!(refusals(&c, &Policy::Any).is_empty());
    }

    #[test]
    fn a_root_only_config_keeps_any_command_and_no_other_does() {
        if !root() {
            return;
        }
        let base = tempfile::tempdir().unwrap();
        chmod(base.path(), 0o755);
        let cf = base.path().join("lvs.cf");
        std::fs::write(&cf, "serial_no = 1\n").unwrap();
        chmod(&cf, 0o600);
        let dir = Path::new(DEFAULT_SCRIPTS_DIR);
        let read = |p: &Path, trust| read_config(p, dir, trust).unwrap();
        assert_eq!(read(&cf, true).policy, Policy::Any);
        assert_eq!(read(&cf, true).bytes, b"serial_no = 1\n");
        // `up` (the admin UI in the same process): never.
        assert_eq!(read(&cf, false).policy, Policy::Scripts(dir.into()));
        // Writable by the group, or someone else's (as the admin UI's file is).
        chmod(&cf, 0o620);
        let r = read(&cf, true);
        assert_eq!(r.policy, Policy::Scripts(dir.into()));
        assert!(r.restricted_because.unwrap().contains("mode 620"));
        chmod(&cf, 0o644);
        chown(&cf, Some(998), None).unwrap();
        assert!(read(&cf, true)
            .restricted_because
            .unwrap()
            .contains("uid 998"));
        chown(&cf, Some(0), None).unwrap();
        assert_eq!(read(&cf, true).policy, Policy::Any);
        // A link the web user owns to root's file: they could point it anywhere.
        let link = base.path().join("link.cf");
        symlink(&cf, &link).unwrap();
        assert_eq!(read(&link, true).policy, Policy::Any, "root's own link");
        std::os::unix::fs::lchown(&link, Some(998), None).unwrap();
        assert_eq!(read(&link, true).policy, Policy::Scripts(dir.into()));
        // A second name for the file.
        std::fs::hard_link(&cf, base.path().join("again.cf")).unwrap();
        assert!(read(&cf, true)
            .restricted_because
            .unwrap()
            .contains("hard links"));
        std::fs::remove_file(base.path().join("again.cf")).unwrap();
        // A folder on the way others can write to.
        chmod(base.path(), 0o777);
        assert_eq!(read(&cf, true).policy, Policy::Scripts(dir.into()));
    }
}

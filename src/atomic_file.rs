//! Atomic replacement of a file: readers see the old file or the new one, never a
//! half-written one, and the new one survives a crash once this returns.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The mode `lvs.cf` is always written with: the supervisor reads it through its group,
/// and nobody else has to (it names scripts, addresses and the key file's path).
pub const CONFIG_MODE: u32 = 0o640;

/// Writes `lvs.cf` (Apply, `export -o`) atomically with the fixed mode
/// [`CONFIG_MODE`], owned by the caller, in the group of the file it replaces (the
/// caller's group for a new file). Nothing of the old file's mode is kept: a
/// set-user-ID, set-group-ID or sticky bit, or a world-readable mode, set by hand or
/// left by an earlier version, goes. An error when the group cannot be kept (the file
/// is then left as it was).
///
/// A symbolic link is written through: its target is replaced (a temporary file in the
/// target's folder, renamed over it) and the link stays, so a layout such as
/// `/etc/lvs-director/lvs.cf -> /etc/sysconfig/ha/lvs.cf` survives an Apply. The
/// target's folder must then be writable by the caller, as `path`'s would be.
pub fn write_config(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::{fchown, MetadataExt, PermissionsExt};

    let target = resolve_link(path)?;
    let old_group = match std::fs::metadata(&target) {
        Ok(m) => Some(m.gid()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    replace(&target, contents, |tmp| {
        if let Some(gid) = old_group {
            if tmp.metadata()?.gid() != gid {
                fchown(tmp, None, Some(gid))?;
            }
        }
        // After the chown, and explicit: the temporary file's mode comes from the
        // umask, and no special bit may come from anywhere.
        tmp.set_permissions(std::fs::Permissions::from_mode(CONFIG_MODE))
    })
}

/// `path`, or what it finally points to when it is a symbolic link (a relative target
/// is relative to the link's folder). An error for a dangling link or a loop.
fn resolve_link(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    // As the kernel's own limit on links followed in one lookup.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) => dir.join(to),
                    None => to,
                };
            }
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound && p == path => return Ok(p),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "{} is a symbolic link to {}: {e}",
                        path.display(),
                        p.display()
                    ),
                ))
            }
        }
    }
    Err(io::Error::other(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}

/// The temporary file, `prepare`d (owner, mode), synced, renamed over `path`, and the
/// folder synced.
fn replace(
    path: &Path,
    contents: &[u8],
    prepare: impl FnOnce(&std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".lvs-director-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    prepare(tmp.as_file())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the directory entry is on disk.
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `contents` to a temporary file beside `path`, flushes it to disk, renames it
/// over `path` and syncs the directory. An existing file's owner, group and permissions
/// are kept (an error if they cannot be: the file is then left as it was); a new file
/// gets `mode` (e.g. 0o644) and the caller's owner and group. For the supervisor's own
/// files; `lvs.cf` is written by [`write_config`].
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::{fchown, MetadataExt, PermissionsExt};

    let old = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    replace(path, contents, |tmp| {
        let perms = match &old {
            Some(old) => {
                let new = tmp.metadata()?;
                // Only when they differ: an unprivileged caller may not give a file
                // away, but rewriting its own file in its own group needs no change.
                if (new.uid(), new.gid()) != (old.uid(), old.gid()) {
                    fchown(tmp, Some(old.uid()), Some(old.gid()))?;
                }
                old.permissions()
            }
            None => std::fs::Permissions::from_mode(mode),
        };
        // After the chown, which clears the set-user-ID and set-group-ID bits.
        tmp.set_permissions(perms)
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replaces_contents_and_keeps_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lvs.cf");
        write_atomic(&p, b"one\n", 0o640).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&p, b"two\n", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn keeps_owner_and_group() {
        use std::os::unix::fs::MetadataExt;

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lvs.cf");
        write_atomic(&p, b"one\n", 0o640).unwrap();
        let owner = |p: &Path| {
            let m = std::fs::metadata(p).unwrap();
            (m.uid(), m.gid())
        };
        let mine = owner(&p);
        // Rewriting one's own file needs no privilege.
        write_atomic(&p, b"two\n", 0o644).unwrap();
        assert_eq!(owner(&p), mine);

        // Giving the file to someone else takes root (CAP_CHOWN).
        match std::os::unix::fs::chown(&p, Some(1234), Some(4321)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                eprintln!("not root: skipping the change of owner ({e})");
                return;
            }
            Err(e) => panic!("chown: {e}"),
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o2640)).unwrap();
        write_atomic(&p, b"three\n", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "three\n");
        assert_eq!(owner(&p), (1234, 4321));
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o2640,
            "the set-group-ID bit survives the chown"
        );
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_config_is_written_0640_whatever_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lvs.cf");
        write_config(&p, b"one\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\n");
        assert_eq!(mode(&p), 0o640, "a new file is not world-readable");

        // Modes set by hand (or by an older version) are not carried over: no
        // special bit, nothing for others.
        for old in [0o4755, 0o2775, 0o1777, 0o644, 0o600] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(old)).unwrap();
            assert_eq!(mode(&p), old);
            write_config(&p, b"two\n").unwrap();
            assert_eq!(mode(&p), 0o640, "after {old:o}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_config_keeps_its_group_and_becomes_the_writers() {
        use std::os::unix::fs::MetadataExt;

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lvs.cf");
        write_config(&p, b"one\n").unwrap();
        let me = std::fs::metadata(&p).unwrap().uid();
        match std::os::unix::fs::chown(&p, Some(1234), Some(4321)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                eprintln!("not root: skipping the change of owner ({e})");
                return;
            }
            Err(e) => panic!("chown: {e}"),
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4755)).unwrap();
        write_config(&p, b"two\n").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (me, 4321),
            "the writer's, in the old group"
        );
        assert_eq!(m.mode() & 0o7777, 0o640);
    }

    #[test]
    fn a_symlinked_config_is_written_through_and_the_link_stays() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("ha");
        std::fs::create_dir(&elsewhere).unwrap();
        let target = elsewhere.join("lvs.cf");
        std::fs::write(&target, "old\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let link = dir.path().join("lvs.cf");
        std::os::unix::fs::symlink("ha/lvs.cf", &link).unwrap();

        write_config(&link, b"new\n").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("ha/lvs.cf"));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(
            mode(&target),
            0o640,
            "the target's mode is fixed, not copied"
        );
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 1);

        // A dangling link is an error that names it; nothing is created.
        std::fs::remove_file(&target).unwrap();
        let e = write_config(&link, b"x").unwrap_err();
        assert!(e.to_string().contains("is a symbolic link to"), "{e}");
        assert!(!target.exists());
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/lvs.cf");
        assert!(write_atomic(&p, b"x", 0o644).is_err());
    }
}

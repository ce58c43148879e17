//! Atomic replacement of a file: readers see the old file or the new one, never a
//! half-written one, and the new one survives a crash once this returns.

use std::io::{self, Write};
use std::path::Path;

/// Writes `contents` to a temporary file beside `path`, flushes it to disk, renames it
/// over `path` and syncs the directory. An existing file's owner, group and permissions
/// are kept (an error if they cannot be: the file is then left as it was); a new file
/// gets `mode` (e.g. 0o644) and the caller's owner and group.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::{fchown, MetadataExt, PermissionsExt};

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let old = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".lvs-director-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    let perms = match &old {
        Some(old) => {
            let new = tmp.as_file().metadata()?;
            // Only when they differ: an unprivileged caller may not give a file away,
            // but rewriting its own file in its own group needs no change at all.
            if (new.uid(), new.gid()) != (old.uid(), old.gid()) {
                fchown(tmp.as_file(), Some(old.uid()), Some(old.gid()))?;
            }
            old.permissions()
        }
        None => std::fs::Permissions::from_mode(mode),
    };
    // After the chown, which clears the set-user-ID and set-group-ID bits.
    tmp.as_file().set_permissions(perms)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the directory entry is on disk.
    std::fs::File::open(dir)?.sync_all()
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

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/lvs.cf");
        assert!(write_atomic(&p, b"x", 0o644).is_err());
    }
}

//! Atomic replacement of a file: readers see the old file or the new one, never a
//! half-written one, and the new one survives a crash once this returns.

use std::io::{self, Write};
use std::path::Path;

/// Writes `contents` to a temporary file beside `path`, flushes it to disk, renames it
/// over `path` and syncs the directory. An existing file's permissions are kept;
/// a new file gets `mode` (e.g. 0o644).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".lvs-director-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    let perms = match std::fs::metadata(path) {
        Ok(m) => m.permissions(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::Permissions::from_mode(mode),
        Err(e) => return Err(e),
    };
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
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/lvs.cf");
        assert!(write_atomic(&p, b"x", 0o644).is_err());
    }
}

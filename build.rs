//! Build information for `lvs-director --version` (through vergen: the commit from
//! `git`, the compiler and the target), and a rebuild when a migration changes:
//! `sqlx::migrate!()` embeds the SQL files at compile time, and cargo does not otherwise
//! notice a new or edited one.

use vergen_gitcl::{CargoBuilder, Emitter, GitclBuilder, RustcBuilder};

/// `git rev-parse --git-path PATH`: where a file of the repository's git folder is
/// (a worktree's HEAD is not under `.git/`).
fn git_path(path: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--git-path", path])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=migrations");
    // A new commit changes HEAD (a checkout) or the branch's ref (a commit): without
    // these, --version kept naming the commit of the last build that ran this script.
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git_path(path) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let branch = std::process::Command::new("git")
        .args(["symbolic-ref", "-q", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(p) = branch.as_deref().and_then(git_path) {
        println!("cargo:rerun-if-changed={p}");
    }
    // Outside a git checkout (a source tarball) vergen emits placeholders with a
    // warning instead of failing the build.
    let git = GitclBuilder::default()
        .sha(true)
        .commit_date(true)
        .dirty(false)
        .build()?;
    let rustc = RustcBuilder::default().semver(true).channel(true).build()?;
    let cargo = CargoBuilder::default()
        .target_triple(true)
        .opt_level(true)
        .debug(true)
        .build()?;
    Emitter::default()
        .add_instructions(&git)?
        .add_instructions(&rustc)?
        .add_instructions(&cargo)?
        .emit()?;
    Ok(())
}

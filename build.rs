//! Build information for `lvs-director --version` (through vergen: the commit from
//! `git`, the compiler and the target), and a rebuild when a migration changes:
//! `sqlx::migrate!()` embeds the SQL files at compile time, and cargo does not otherwise
//! notice a new or edited one.

use vergen_gitcl::{CargoBuilder, Emitter, GitclBuilder, RustcBuilder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=migrations");
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

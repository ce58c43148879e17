//! `lvs-director generate-docs --out DIR` (hidden): the manual pages and the shell
//! completions, generated from the clap definition so that they never drift from the
//! command line. `scripts/package.sh` runs it and puts the result in the packages.
//!
//! Layout under DIR: `man/lvs-director.1` and one `man/lvs-director-COMMAND.1` per
//! command (nested ones too, e.g. `lvs-director-ipvs-show.1`), and
//! `completions/bash/lvs-director`, `completions/zsh/_lvs-director`,
//! `completions/fish/lvs-director.fish`: the names each shell looks for.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, Failure, Outcome};

pub fn generate(out: &Path) -> Outcome {
    let io = |what: &Path, e: std::io::Error| {
        Failure::io(format!("{}: cannot write: {e}", what.display()))
    };
    let man = out.join("man");
    std::fs::create_dir_all(&man).map_err(|e| io(&man, e))?;
    // Hidden commands (this one) get no page.
    clap_mangen::generate_to(Cli::command(), &man).map_err(|e| io(&man, e))?;
    // The names bash-completion, zsh's fpath and fish look up.
    for (shell, name) in [
        (Shell::Bash, "lvs-director"),
        (Shell::Zsh, "_lvs-director"),
        (Shell::Fish, "lvs-director.fish"),
    ] {
        let dir = out.join("completions").join(shell.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let path = dir.join(name);
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "lvs-director", &mut text);
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_completions_are_written() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path()).unwrap();
        let page = std::fs::read_to_string(dir.path().join("man/lvs-director.1")).unwrap();
        assert!(page.contains(".TH lvs-director 1"), "{page}");
        assert!(page.contains("check\\-config"), "{page}");
        for cmd in [
            "check-config",
            "passwd",
            "pulse",
            "web",
            "migrate",
            "ipvs-show",
        ] {
            let p = dir.path().join(format!("man/lvs-director-{cmd}.1"));
            assert!(p.exists(), "{} missing", p.display());
        }
        assert!(!dir.path().join("man/lvs-director-generate-docs.1").exists());
        for f in [
            "completions/bash/lvs-director",
            "completions/zsh/_lvs-director",
            "completions/fish/lvs-director.fish",
        ] {
            let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
            assert!(text.contains("check-config"), "{f}");
        }
    }
}

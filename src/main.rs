//! The `lvs-director` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lvs_director::cli::Cli::parse();
    // A daemon logs its state changes; a one-shot command only its warnings.
    let default = match cli.command {
        lvs_director::cli::Command::Pulse { .. }
        | lvs_director::cli::Command::Web { .. }
        | lvs_director::cli::Command::Up { .. } => "info,tower_http=warn,sqlx=warn",
        _ => "warn",
    };
    lvs_director::logging::init(default);
    lvs_director::cli::run(cli)
}

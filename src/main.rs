//! The `userhook` binary: parse the command line, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    userhook::cli::run(userhook::cli::Cli::parse())
}

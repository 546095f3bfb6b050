//! The `userhook` binary: parse the command line, hand over to the library. Nothing else
//! belongs here.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: matched requests allocate for the copy, the event and its fields; glibc's
/// malloc showed up as ~9% of the proxy's CPU in profiles of that path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    userhook::cli::run(userhook::cli::Cli::parse())
}

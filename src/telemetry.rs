//! Log setup: text for a terminal, JSON for machines. `RUST_LOG` overrides the config level.
//! It only installs the subscriber; what is logged (never a secret or a body) is each module's
//! rule.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::model::LogSpec;

/// Installs the global subscriber once; later calls are ignored (tests start many servers).
pub fn init(spec: &LogSpec) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&spec.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if spec.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

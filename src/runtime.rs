//! The compiled, immutable snapshot of one config: what a request uses from start to end.
//!
//! A reload builds a new `Runtime` and swaps it in atomically; requests already in flight
//! keep the `Arc` they started with, so no request ever sees half of two configs.

use crate::config::ConfigFile;
use crate::detect::RouteTable;

/// One loaded config, ready for the request path.
#[derive(Debug)]
pub struct Runtime {
    /// The file as parsed (interpolated); kept for `/config` and for diffing reloads.
    pub file: ConfigFile,
    /// The compiled route rules.
    pub routes: RouteTable,
}

//! STUB until the config branch lands.
use super::ConfigFile;
/// Stub.
pub fn summary(file: &ConfigFile) -> String {
    format!("upstream: {}", file.upstream)
}

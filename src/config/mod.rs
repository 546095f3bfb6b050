//! Loading `userhook.yaml`: read, interpolate `${VAR}`, parse, validate.
//!
//! Loading never touches running state: it returns a [`ConfigFile`] or every problem found.
//! Turning a valid file into the snapshot the proxy uses is [`crate::runtime::Runtime::build`].

pub mod error;
pub mod model;
pub mod units;

pub use error::{ConfigError, ConfigErrors};
pub use model::ConfigFile;

use std::path::Path;

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<ConfigFile, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )
    })?;
    parse_str(&text)
}

/// Parses config text (after `${VAR}` interpolation).
pub fn parse_str(text: &str) -> Result<ConfigFile, ConfigErrors> {
    serde_saphyr::from_str::<ConfigFile>(text)
        .map_err(|e| ConfigError::new("", format!("invalid YAML: {e}")).into())
}

//! Detection: which requests are user lifecycle calls (STUB, replaced by the detection work).

use http::Method;

use crate::config::model::{ProfileSpec, RouteSpec};
use crate::config::ConfigError;

/// The compiled rules of one config snapshot.
#[derive(Debug, Default)]
pub struct RouteTable {}

/// Method and path matched some rules; the outcome is decided when the response is known.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    /// Index of the matched path entry in the table.
    pub entry: usize,
    /// Path parameters, e.g. `("id", "42")`.
    pub params: Vec<(String, String)>,
}

impl RouteTable {
    /// Compiles the operator's routes and the profiles' rules.
    pub fn compile(
        _routes: &[RouteSpec],
        _profiles: &[ProfileSpec],
    ) -> Result<Self, Vec<ConfigError>> {
        Ok(RouteTable {})
    }

    /// Which rules could apply to this request; `None` (without allocating) for most traffic.
    pub fn classify(&self, _method: &Method, _path: &str) -> Option<RouteMatch> {
        None
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        0
    }

    /// True when no rule exists.
    pub fn is_empty(&self) -> bool {
        true
    }
}

//! Learn mode: propose `routes:` for an IAM nobody documented, from the traffic userhook
//! already sees.
//!
//! In learn mode (`userhook learn`, or `learn:` in the config) the proxy copies the bodies of
//! *every* exchange, not only matched ones, and the extractor task hands each to
//! [`Learner::observe`] before detection, off the request path. The learner infers path
//! templates (`paths`, `segment`), keeps the shapes of bodies, statuses and credentials per
//! endpoint (`observe`, `shape`) and, on demand (`GET /learn`, SIGINT/SIGTERM), scores every
//! endpoint for each lifecycle action and writes a proposed config (`propose`).
//!
//! Never: keep a value (a password, token, cookie, name or id): only key names, types,
//! statuses, counts, and keyed 64-bit hashes of credentials (to see one issued, presented and
//! later refused). Memory is bounded: [`observe::MAX_ENDPOINTS`] endpoints,
//! [`shape::MAX_KEYS`] key paths per body side and status, [`observe::MAX_CREDENTIALS`]
//! credential hashes, [`paths::MAX_POSITIONS`] path positions.

pub mod observe;
pub mod paths;
pub mod propose;
pub mod segment;
pub mod shape;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::exchange::Exchange;

/// What learn mode keeps, shared by the extractor task (which feeds it) and the admin API and
/// shutdown (which render it).
#[derive(Debug)]
pub struct Learner {
    learned: Mutex<observe::Learned>,
    /// Where the proposal is written (`learn.out`).
    out: PathBuf,
    /// The IAM's URL, written at the top of the proposal so `userhook check` takes it as is.
    upstream: String,
    /// Largest decoded body read (the capture limit times the decode expansion factor).
    decode_limit: usize,
}

/// Why the proposal could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the learned rules to {path}: {source}")]
pub struct WriteError {
    /// The `learn.out` file.
    pub path: String,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

impl Learner {
    /// An empty learner writing to `out`.
    pub fn new(out: PathBuf, upstream: &str, decode_limit: usize) -> Self {
        Learner {
            learned: Mutex::new(observe::Learned::default()),
            out,
            upstream: upstream.to_owned(),
            decode_limit,
        }
    }

    /// Adds one exchange (matched or not). Called on the extractor task only.
    pub fn observe(&self, ex: &Exchange) {
        if let Ok(mut learned) = self.learned.lock() {
            learned.observe(ex, self.decode_limit);
        }
    }

    /// The proposed config as YAML text.
    pub fn proposal(&self) -> String {
        match self.learned.lock() {
            Ok(learned) => propose::render(&learned, Some(&self.upstream)),
            Err(_) => String::from("# learn: the learner's state was lost\nroutes: []\n"),
        }
    }

    /// Exchanges seen so far.
    pub fn exchanges(&self) -> u64 {
        self.learned.lock().map_or(0, |l| l.exchanges)
    }

    /// Where the proposal goes.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Writes the proposal to `learn.out` (a temporary file renamed into place, so a reader
    /// never sees half of it).
    pub fn write(&self) -> Result<(), WriteError> {
        self.write_text(&self.proposal())
    }

    /// Writes `text` (a proposal this learner made) to `learn.out`, as [`Learner::write`].
    pub fn write_text(&self, text: &str) -> Result<(), WriteError> {
        let err = |source| WriteError {
            path: self.out.display().to_string(),
            source,
        };
        let tmp = self.out.with_extension("learn-tmp");
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, &self.out).map_err(err)
    }
}

#[cfg(test)]
mod tests;

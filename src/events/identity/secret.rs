//! The instance secret that keys the credential hashes.
//!
//! `identity.secret` (usually `${USERHOOK_IDENTITY_SECRET}`) when the operator gives one;
//! otherwise 32 random bytes generated on the first start and kept in a file of their own
//! (mode 0600) beside the identity file, so restarts keep recognising credentials. The key is
//! never logged, never shown, and never written into the identity file itself.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

/// Bytes of a generated key.
const KEY_LEN: usize = 32;

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file exists but cannot be read, or cannot be created.
    #[error("identity key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The key file holds something other than a key userhook wrote.
    #[error("identity key file {0} is not a key userhook wrote (64 hex digits); move it aside to start afresh (learned sessions are then forgotten)")]
    Malformed(PathBuf),
    /// The system's random source failed.
    #[error("no random bytes for a new identity key")]
    Random,
}

/// Where the generated key of the identity file at `store` is kept: `<store>.key`.
pub fn key_path(store: &Path) -> PathBuf {
    let mut name = store
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".key");
    store.with_file_name(name)
}

/// The hashing key: the configured secret, else the key file's (created on first use).
pub fn load(configured: Option<&str>, key_file: &Path) -> Result<Vec<u8>, SecretError> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let io = |source| SecretError::Io {
        path: key_file.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(key_file) {
        Ok(text) => decode_hex(text.trim()).ok_or_else(|| SecretError::Malformed(key_file.into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; KEY_LEN];
            SystemRandom::new()
                .fill(&mut key)
                .map_err(|_| SecretError::Random)?;
            if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(key_file).map_err(io)?;
            file.write_all(encode_hex(&key).as_bytes()).map_err(io)?;
            file.write_all(b"\n").map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != KEY_LEN * 2 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_kept_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("identity.redb");
        let file = key_path(&store);
        assert_eq!(file, dir.path().join("identity.redb.key"));
        let first = load(None, &file).expect("generated");
        assert_eq!(first.len(), KEY_LEN);
        assert_eq!(load(None, &file).expect("read back"), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            load(Some("configured-secret-value"), &file).expect("configured"),
            b"configured-secret-value".to_vec()
        );
        std::fs::write(&file, "not hex").expect("write");
        assert!(matches!(load(None, &file), Err(SecretError::Malformed(_))));
    }
}

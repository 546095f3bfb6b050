//! One stored row: a version byte, a CRC-32 of the JSON and the JSON itself, so a row that
//! was changed on disk (a flipped bit, a hand edit that is still valid JSON) is found when it
//! is read instead of being delivered altered. Rows written before checksums (plain JSON,
//! starting with `{`) are still read. Pure functions; nothing here does I/O.

/// The first byte of a checksummed row.
const VERSION: u8 = 1;

/// Bytes a checksummed row adds to its JSON.
pub const OVERHEAD: usize = 5;

/// A row that failed its check: what is wrong with it, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Damage {
    /// The stored checksum does not match the content.
    #[error("checksum mismatch (the row was changed on disk)")]
    Checksum,
    /// Too short, or an unknown format.
    #[error("unknown row format")]
    Format,
}

/// `json` as stored: version, CRC-32 (little-endian), JSON.
pub(super) fn seal(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + OVERHEAD);
    out.push(VERSION);
    out.extend_from_slice(&crc32fast::hash(json).to_le_bytes());
    out.extend_from_slice(json);
    out
}

/// The JSON of a stored row, once its checksum holds.
pub(super) fn open(stored: &[u8]) -> Result<&[u8], Damage> {
    match stored.first() {
        Some(&VERSION) if stored.len() >= OVERHEAD => {
            let (head, json) = stored.split_at(OVERHEAD);
            let want = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
            if crc32fast::hash(json) == want {
                Ok(json)
            } else {
                Err(Damage::Checksum)
            }
        }
        // Written before rows had checksums: plain JSON, unchecked.
        Some(b'{') => Ok(stored),
        _ => Err(Damage::Format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_rows_open_and_any_change_is_caught() {
        let json = br#"{"id":"1","user":{"Email":"alice@example.com"}}"#;
        let row = seal(json);
        assert_eq!(row.len(), json.len() + OVERHEAD);
        assert_eq!(open(&row), Ok(&json[..]));
        // Still valid JSON after the edit: only the checksum can tell.
        let mut edited = row.clone();
        let at = edited.len() - 10;
        edited[at] = b'X';
        assert_eq!(open(&edited), Err(Damage::Checksum));
        for i in 0..row.len() {
            let mut flipped = row.clone();
            flipped[i] ^= 0x01;
            assert!(
                open(&flipped) != Ok(&json[..]),
                "bit flip at {i} not caught"
            );
        }
        assert_eq!(open(b"{\"legacy\":true}"), Ok(&b"{\"legacy\":true}"[..]));
        assert_eq!(open(b""), Err(Damage::Format));
        assert_eq!(open(&[1, 2]), Err(Damage::Format));
        assert_eq!(open(b"garbage"), Err(Damage::Format));
    }
}

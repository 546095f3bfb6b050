//! Config parse and validate (`Snapshot::from_text`: YAML, `${VAR}` interpolation, every
//! check of `Snapshot::compile`): any text is either a snapshot or a list of problems, each
//! naming its key, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use userhook::snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Snapshot::from_text(text, None) {
        Ok(snapshot) => {
            // A snapshot that exists is valid: compiling its own file again agrees.
            let again = Snapshot::compile(snapshot.file.clone(), snapshot.hash.clone(), Some(&snapshot));
            assert!(again.is_ok(), "a valid config recompiled with errors: {:?}", again.err());
            let _ = userhook::config::summary::summary(&snapshot.file);
            let _ = userhook::config::summary::redacted(&snapshot.file);
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused without a problem");
            let _ = errors.to_string();
        }
    }
});

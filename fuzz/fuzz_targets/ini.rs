//! The INI reader of `tandem-server --config FILE` (`bins/tandem-server/src/config/ini.rs`).
//!
//! The binary has no library target, so its module is compiled into this target as it is,
//! by path: what runs here is the file the server runs.
//!
//! Asserts: no panic; every entry's line is a line of the text, in order; and the entries
//! written back as INI (values between `"""`) read back the same, for values on one line.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../bins/tandem-server/src/config/ini.rs"]
mod ini;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(entries) = ini::parse_ini(text) else {
        return;
    };
    let lines = text.lines().count();
    let mut previous = 0;
    for entry in &entries {
        assert!(entry.line > previous && entry.line <= lines, "{entry:?}");
        previous = entry.line;
        assert!(!entry.key.is_empty(), "{entry:?}");
    }

    if entries.iter().all(|entry| !entry.value.contains('\n')) {
        // A first line of its own, so that a key starting with U+FEFF is not read as a BOM.
        let mut written = String::from("; written back\n");
        let mut section = "";
        for entry in &entries {
            if entry.section != section {
                written.push_str(&format!("[{}]\n", entry.section));
                section = &entry.section;
            }
            written.push_str(&format!("{} = \"\"\"{}\"\"\"\n", entry.key, entry.value));
        }
        let again = ini::parse_ini(&written)
            .unwrap_or_else(|err| panic!("{written:?} does not read back: {err:?}"));
        let fields = |entries: &[ini::IniEntry]| -> Vec<(String, String, String)> {
            entries
                .iter()
                .map(|e| (e.section.clone(), e.key.clone(), e.value.clone()))
                .collect()
        };
        assert_eq!(fields(&entries), fields(&again), "{written:?}");
    }

    // What the server does next: the entries become a `config` source.
    let source = ini::IniSource::new(Path::new("fuzz.ini"), entries);
    let _ = ::config::Source::collect(&source);
});

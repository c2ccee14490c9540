//! Grafana's INI dialect, as its reader (go-ini with default options) understands it,
//! handed to the `config` crate as a source.
//!
//! The `config` crate's own INI format (rust-ini) differs from go-ini in ways that lose
//! values without an error: an indented comment swallows the key on the next line, an inline
//! `;` or `#` comment stays in the value, and a backslash escapes the next character, which
//! mangles Windows paths and passwords.

use std::path::Path;

/// One `key = value` line of an INI file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct IniEntry {
    /// Empty before the first section header.
    pub(crate) section: String,
    pub(crate) key: String,
    pub(crate) value: String,
    /// From 1, for error messages.
    pub(crate) line: usize,
}

/// Reads INI text as Grafana's reader (go-ini with its default options) does:
/// - a line whose first non-blank character is `;` or `#` is a comment;
/// - `key = value` or `key: value`; surrounding blanks are trimmed;
/// - in an unquoted value, `;` or `#` starts a comment, so a password holding one must be
///   wrapped in `"""`; a value between `"""` (or backticks) is taken as written and may
///   span lines;
/// - a value wrapped in one pair of `"` or `'` loses them;
/// - backslashes are ordinary characters.
///
/// Unlike go-ini, a line ending in `\` is not joined with the next, so that a Windows path
/// ending in a backslash stays whole.
/// The error is the line number and what is wrong.
pub(crate) fn parse_ini(text: &str) -> Result<Vec<IniEntry>, (usize, &'static str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    let mut section = String::new();
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line));
    while let Some((number, line)) = lines.next() {
        let line = line.trim();
        if line.is_empty() || line.starts_with([';', '#']) {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let Some((name, _)) = header.split_once(']') else {
                return Err((number, "a section header must end with ]"));
            };
            section = name.trim().to_owned();
            continue;
        }
        let Some(split) = line.find(['=', ':']) else {
            return Err((number, "expected `key = value` or a `[section]` header"));
        };
        let key = line[..split].trim();
        if key.is_empty() {
            return Err((number, "the key is missing before the ="));
        }
        let raw = line[split + 1..].trim();
        let quote = if raw.len() > 3 && raw.starts_with("\"\"\"") {
            Some("\"\"\"")
        } else if raw.starts_with('`') {
            Some("`")
        } else {
            None
        };
        let value = match quote {
            Some(quote) => {
                let inner = &raw[quote.len()..];
                match inner.rfind(quote) {
                    Some(end) => inner[..end].to_owned(),
                    None => {
                        let mut value = inner.to_owned();
                        loop {
                            let Some((_, next)) = lines.next() else {
                                return Err((number, "the quoted value is never closed"));
                            };
                            value.push('\n');
                            if let Some(end) = next.rfind(quote) {
                                value.push_str(&next[..end]);
                                break value;
                            }
                            value.push_str(next);
                        }
                    }
                }
            }
            None => {
                let value = match raw.find([';', '#']) {
                    Some(comment) => raw[..comment].trim_end(),
                    None => raw,
                };
                strip_quotes(value).to_owned()
            }
        };
        entries.push(IniEntry {
            section: section.clone(),
            key: key.to_owned(),
            value,
            line: number,
        });
    }
    Ok(entries)
}

fn strip_quotes(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2
            && value.starts_with(quote)
            && value.ends_with(quote)
            && value.matches(quote).count() == 2
        {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// The parsed INI file as a `config` source; each value's origin is `file:line`.
#[derive(Clone, Debug)]
pub(crate) struct IniSource {
    sections: ::config::Map<String, ::config::Value>,
}

impl IniSource {
    pub(crate) fn new(path: &Path, entries: Vec<IniEntry>) -> IniSource {
        let file = path.display().to_string();
        let mut tables: ::config::Map<String, ::config::Map<String, ::config::Value>> =
            ::config::Map::new();
        for entry in entries {
            // Grafana's unnamed section holds app_mode and instance_name, which Tandem
            // does not read.
            if entry.section.is_empty() {
                continue;
            }
            let origin = format!("{file}:{}", entry.line);
            tables
                .entry(entry.section)
                .or_default()
                .insert(entry.key, ::config::Value::new(Some(&origin), entry.value));
        }
        let sections = tables
            .into_iter()
            .map(|(name, table)| (name, ::config::Value::new(Some(&file), table)))
            .collect();
        IniSource { sections }
    }
}

impl ::config::Source for IniSource {
    fn clone_into_box(&self) -> Box<dyn ::config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<::config::Map<String, ::config::Value>, ::config::ConfigError> {
        Ok(self.sections.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ini::{IniEntry, parse_ini};

    #[test]
    fn ini_values_are_read_as_grafana_reads_them() {
        #[track_caller]
        fn check(line: &str, expected: &str) {
            let entries = parse_ini(&format!("[s]\n{line}\n")).expect("valid INI");
            let values: Vec<&str> = entries.iter().map(|entry| entry.value.as_str()).collect();
            assert_eq!(values, [expected], "line {line:?}");
        }
        check("k = v", "v");
        check("k=v", "v");
        check("k: v", "v");
        check("k =", "");
        check("k = a b  ", "a b");
        check("k = v ; comment", "v");
        check("k = v#comment", "v");
        check("k = http://h/#/x", "http://h/");
        check("k = \"quoted\"", "quoted");
        check("k = 'quoted'", "quoted");
        check("k = \"a\"b\"", "\"a\"b\"");
        check("k = \"\"\"a;b#c\"\"\"", "a;b#c");
        check("k = `a;b`", "a;b");
        check("k = C:\\data\\new", "C:\\data\\new");
        check("k = a=b", "a=b");
        check("k = host:9094", "host:9094");
    }

    #[test]
    fn ini_structure() {
        let entries = parse_ini(
            "\u{feff}top = 1\n\
             [ a ]\n\
             k = \"\"\"first\n\
             ; kept\n\
             last\"\"\"\n\
             \n\
             \t# comment\n\
             [b] ; comment\n\
             k = 2\r\n",
        )
        .expect("valid INI");
        let entry = |section: &str, key: &str, value: &str, line| IniEntry {
            section: section.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
            line,
        };
        assert_eq!(
            entries,
            [
                entry("", "top", "1", 1),
                entry("a", "k", "first\n; kept\nlast", 3),
                entry("b", "k", "2", 9),
            ]
        );

        assert_eq!(
            parse_ini("[a\n"),
            Err((1, "a section header must end with ]"))
        );
        assert_eq!(
            parse_ini("[a]\n= 1\n"),
            Err((2, "the key is missing before the ="))
        );
        assert_eq!(
            parse_ini("[a]\nk = \"\"\"open\n"),
            Err((2, "the quoted value is never closed"))
        );
    }
}

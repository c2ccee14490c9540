//! URL slugs from titles, by the rules of Grafana's `pkg/infra/slugify` (Grafana 9 and
//! later): the slug is what Grafana would put in `/d/<uid>/<slug>`, so links agree.

use base64::Engine;
use sha1::{Digest, Sha1};

/// The slug of `title`, as Grafana makes it.
///
/// Lower-case ASCII letters and digits are kept; a few hundred Latin, Cyrillic and Hebrew
/// letters and signs are spelled in ASCII (`é` → `e`, `ж` → `zh`, `&` → `and`); every run
/// of anything else becomes one `-`, and `-` is trimmed from both ends. When nothing is
/// left (a title of emoji or of Chinese, say), the slug is the title in unpadded URL-safe
/// base64, or, when that is longer than 50 characters or empty, a name-based (version 5)
/// UUID of the title, so that every title has a stable, non-empty slug.
pub fn slugify(title: &str) -> String {
    let slug = latin_slug(title);
    if !slug.is_empty() {
        return slug;
    }
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(title);
    if !encoded.is_empty() && encoded.len() <= 50 {
        return encoded;
    }
    uuid_v5_oid(title)
}

fn latin_slug(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    let mut after_separator = false;
    for c in title.chars() {
        // One character at a time, keeping the first of a multi-character lower case
        // ('İ' → 'i'), as Go's per-rune lower-casing does; the text's context (a Greek
        // final sigma) does not matter either.
        let c = c.to_lowercase().next().unwrap_or(c);
        if let Some(spelled) = transliterate(c) {
            slug.push_str(spelled);
            after_separator = false;
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
            after_separator = false;
        } else if !after_separator {
            slug.push('-');
            after_separator = true;
        }
    }
    slug.trim_matches('-').to_owned()
}

/// The ASCII spelling Grafana gives a (lower-case) letter or sign, if any.
fn transliterate(c: char) -> Option<&'static str> {
    // Grouped by spelling; a character appears once. The lone upper-case 'C' (for Hebrew
    // final tsadi) is Grafana's, kept so that slugs stay identical.
    const SPELLINGS: &[(&str, &str)] = &[
        ("a", "àáâäåāăąǎǻảãạắằẳẵặấầẩẫậаא"),
        ("b", "бב"),
        ("c", "©çćĉċčцצ"),
        ("d", "ďđдד"),
        ("e", "èéêëēĕėęěəẻẽẹếềểễệеєע"),
        ("f", "ƒф"),
        ("g", "ĝğġģгґג"),
        ("h", "ĥħхהח"),
        ("i", "ìíîïĩīĭįıǐỉịиіїי"),
        ("j", "ĵй"),
        ("k", "ķĸкךכ"),
        ("l", "ĺļľŀłлל"),
        ("m", "мםמ"),
        ("n", "ńņňŉŋнןנ"),
        ("o", "òóôõöøōŏőơǒǿỏọốồổỗộớờởỡợо"),
        ("p", "þпףפ"),
        ("q", "ק"),
        ("r", "®ŕŗřрר"),
        ("s", "śŝşšсס"),
        ("t", "ţťŧтטת"),
        ("u", "ùúûũūŭůűųưǔǖǘǚǜủụứừửữựу"),
        ("v", "вו"),
        ("w", "ŵש"),
        ("y", "ýÿŷỳỷỹỵы"),
        ("z", "źżžſзז"),
        ("ae", "æǽ"),
        ("and", "&"),
        ("at", "@"),
        ("ch", "ч"),
        ("ij", "ĳ"),
        ("ja", "я"),
        ("je", "э"),
        ("jo", "ё"),
        ("ju", "ю"),
        ("oe", "œ"),
        ("sch", "щ"),
        ("sh", "ш"),
        ("ss", "ß"),
        ("tm", "™"),
        ("ue", "ü"),
        ("zh", "ж"),
        ("-", "ъь"),
        ("C", "ץ"),
    ];
    if c.is_ascii() && c != '&' && c != '@' {
        return None;
    }
    SPELLINGS
        .iter()
        .find(|(_, letters)| letters.contains(c))
        .map(|(spelling, _)| *spelling)
}

/// The version 5 (SHA-1, name-based) UUID of `name` in the ISO OID namespace, as text.
fn uuid_v5_oid(name: &str) -> String {
    const NAMESPACE_OID: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x12, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];
    let mut hasher = Sha1::new();
    hasher.update(NAMESPACE_OID);
    hasher.update(name.as_bytes());
    let digest = hasher.finalize();
    // The first 16 of SHA-1's 20 bytes.
    let mut bytes = [0u8; 16];
    for (byte, from) in bytes.iter_mut().zip(digest.iter()) {
        *byte = *from;
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(title: &str, expected: &str) {
        assert_eq!(slugify(title), expected, "slug of {title:?}");
    }

    #[test]
    fn ascii_words_are_joined_by_single_dashes() {
        check("Hello, playground", "hello-playground");
        check("  CPU / Memory (prod)  ", "cpu-memory-prod");
        check("?,a . \n ", "a");
        check("Rock & Roll @ Home", "rock-and-roll-at-home");
        check("snake_case-and-dashes", "snake-case-and-dashes");
    }

    #[test]
    fn accented_and_cyrillic_letters_are_spelled_in_ascii() {
        check(
            "Cộng hòa xã hội chủ nghĩa Việt Nam",
            "cong-hoa-xa-hoi-chu-nghia-viet-nam",
        );
        check("Über Größe", "ueber-grosse");
        check("Щука и ёж", "schuka-i-jozh");
        check("ÆØÅ", "aeoa");
    }

    #[test]
    fn letters_without_a_spelling_are_separators() {
        check(
            "方向盤後面 hi this is a test خلف المقو",
            "hi-this-is-a-test",
        );
        check(
            "😢 😣 😤 😥 😦 😧 😨 😩 😪 😫 😬 Hello, it's paradise",
            "hello-it-s-paradise",
        );
    }

    #[test]
    fn a_title_with_nothing_to_spell_falls_back_to_base64_then_uuid() {
        check("😢 -", "8J-YoiAt");
        check("", "0a68eb57-c88a-5f34-9e9d-27f85e68af4f");
        check(
            "😢 😣 😤 😥 😦 😧 😨 😩 😪 😫 😬",
            "61db60b5-f1e7-5853-9b81-0f074fc268ea",
        );
    }
}

//! The input policy: what a value from a client must satisfy before it reaches a store.
//!
//! Every crate applies the same rules, at the HTTP edge and again in its domain types (an
//! embedder may call a domain crate without the edge in front of it):
//! - text is valid UTF-8 without NUL (PostgreSQL refuses U+0000 in text, SQLite stores it,
//!   so the backends would disagree);
//! - text has a length limit, counted in characters;
//! - a collection has a count limit as well as a limit on each item;
//! - text that becomes a `LIKE` pattern is at most [`MAX_PATTERN_CHARS`] long;
//! - a number is range-checked into the domain's type, and arithmetic on client numbers is
//!   checked or saturating, so nothing can panic or overflow a statement's binder
//!   (sea-query binds offsets and limits as `i64`: [`offset`] and [`clamp_i64`] keep them in
//!   range).
//!
//! `docs/ARCHITECTURE.md` ("Input policy") lists where each rule is enforced.

use std::borrow::Cow;

/// The longest text accepted in a search (`query`, `name`, `loginOrEmail`): it becomes a
/// `LIKE` pattern, and SQLite refuses patterns over 50 000 bytes.
pub const MAX_PATTERN_CHARS: usize = 1000;

/// The largest offset or limit handed to a statement: sea-query binds them as `i64`.
pub const MAX_OFFSET: u64 = i64::MAX as u64;

/// A value from a client that breaks the input policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The text contains U+0000.
    #[error("{field} must not contain a NUL character")]
    Nul {
        /// Which field, as the client names it.
        field: Cow<'static, str>,
    },
    /// The text is longer than allowed.
    #[error("{field} must be at most {max} characters long")]
    TooLong {
        /// Which field.
        field: Cow<'static, str>,
        /// The limit, in characters.
        max: usize,
    },
    /// The collection has more items than allowed.
    #[error("{field} must have at most {max} items")]
    TooMany {
        /// Which field.
        field: Cow<'static, str>,
        /// The limit.
        max: usize,
    },
    /// The number is outside the accepted range.
    #[error("{field} must be between {min} and {max}")]
    OutOfRange {
        /// Which field.
        field: Cow<'static, str>,
        /// The smallest accepted value.
        min: i128,
        /// The largest accepted value.
        max: i128,
    },
}

impl InputError {
    /// The name of the field at fault.
    pub fn field(&self) -> &str {
        match self {
            InputError::Nul { field }
            | InputError::TooLong { field, .. }
            | InputError::TooMany { field, .. }
            | InputError::OutOfRange { field, .. } => field,
        }
    }
}

/// Refuses text containing NUL.
pub fn check_text(field: impl Into<Cow<'static, str>>, value: &str) -> Result<(), InputError> {
    if value.contains('\0') {
        return Err(InputError::Nul {
            field: field.into(),
        });
    }
    Ok(())
}

/// Refuses text containing NUL or longer than `max` characters.
pub fn check_bounded_text(
    field: impl Into<Cow<'static, str>>,
    value: &str,
    max: usize,
) -> Result<(), InputError> {
    let field = field.into();
    check_text(field.clone(), value)?;
    // A byte count at or under the limit cannot hold more characters than that.
    if value.len() > max && value.chars().count() > max {
        return Err(InputError::TooLong { field, max });
    }
    Ok(())
}

/// Refuses search text that would make a `LIKE` pattern longer than [`MAX_PATTERN_CHARS`],
/// or that contains NUL.
pub fn check_pattern(field: impl Into<Cow<'static, str>>, value: &str) -> Result<(), InputError> {
    check_bounded_text(field, value, MAX_PATTERN_CHARS)
}

/// Refuses a collection of more than `max` items.
pub fn check_count(
    field: impl Into<Cow<'static, str>>,
    count: usize,
    max: usize,
) -> Result<(), InputError> {
    if count > max {
        return Err(InputError::TooMany {
            field: field.into(),
            max,
        });
    }
    Ok(())
}

/// Refuses a number outside `min..=max`.
pub fn check_range(
    field: impl Into<Cow<'static, str>>,
    value: i128,
    min: i128,
    max: i128,
) -> Result<(), InputError> {
    if value < min || value > max {
        return Err(InputError::OutOfRange {
            field: field.into(),
            min,
            max,
        });
    }
    Ok(())
}

/// How many items to skip for page `page` (from 1; 0 counts as 1) of `per_page` items,
/// saturating at [`MAX_OFFSET`]: a page far past the end is empty, never an overflow.
pub fn offset(page: u64, per_page: u64) -> u64 {
    page.saturating_sub(1)
        .saturating_mul(per_page)
        .min(MAX_OFFSET)
}

/// `value` as an `i64`, saturating at `i64::MAX`.
pub fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_refused_and_named() {
        let err = check_text("title", "a\0b").unwrap_err();
        assert_eq!(err.to_string(), "title must not contain a NUL character");
        assert_eq!(err.field(), "title");
        assert!(check_text("title", "a\u{1F600}\u{202E}'; DROP TABLE x;--").is_ok());
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(check_bounded_text("name", &"é".repeat(10), 10).is_ok());
        assert!(check_bounded_text("name", &"é".repeat(11), 10).is_err());
        assert!(check_pattern("query", &"x".repeat(MAX_PATTERN_CHARS)).is_ok());
        assert!(check_pattern("query", &"x".repeat(MAX_PATTERN_CHARS + 1)).is_err());
    }

    #[test]
    fn offsets_never_overflow_a_binder() {
        assert_eq!(offset(0, 10), 0);
        assert_eq!(offset(1, 10), 0);
        assert_eq!(offset(3, 10), 20);
        assert_eq!(offset(u64::MAX, 5000), MAX_OFFSET);
        assert_eq!(offset(i64::MAX as u64, 1000), MAX_OFFSET);
        assert_eq!(clamp_i64(u64::MAX), i64::MAX);
        assert_eq!(clamp_i64(7), 7);
    }

    #[test]
    fn counts_and_ranges() {
        assert!(check_count("tags", 100, 100).is_ok());
        assert_eq!(
            check_count("tags", 101, 100).unwrap_err().to_string(),
            "tags must have at most 100 items"
        );
        assert!(check_range("secondsToLive", -1, 0, 10).is_err());
        assert!(check_range("secondsToLive", 10, 0, 10).is_ok());
    }
}

//! Parts of phone numbers and email addresses typed into search, turned into
//! the substring to look for in the stored canonical forms (`Phone`'s E.164
//! `+8613800138000`, `Email`'s lower-cased address).

use crate::name::width_fold;

/// Digits typed before the number proper that the stored E.164 form does not
/// spell the same way. Each rule drops a prefix of the typed digits, so the
/// returned pattern is a suffix of them (or, after `+`, the number's start):
/// every stored number that contains what was typed still contains the
/// pattern, and stripping can only add matches, never lose one.
///
/// Returns the substring to look for when the query is phone-like (only
/// digits, spaces, `-`, parentheses and a leading `+` after width folding,
/// and at least 4 digits), None otherwise:
/// - `+…` is anchored: the pattern is `+` and the digits, found only at the
///   start of a stored number (`+86 138` → `+86138`); a Chinese trunk `0`
///   typed after `+86` is dropped (`+86 0571 8888` → `+865718888`);
/// - a leading `00` is an international prefix and is dropped when 4 or
///   more digits follow (`0013 8000` → `138000`, found in +86138**0013 8000**);
/// - otherwise a single leading `0` is a trunk prefix and is dropped when 5
///   or more digits follow (`0571 8888` → `5718888`).
///
/// `+86` is kept rather than dropped: the stored form always has it, and
/// `+86138` is more selective than `138`.
pub fn phone_digits_query(query: &str) -> Option<String> {
    let folded = width_fold(query);
    let s = folded.trim();
    let (plus, rest) = match s.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if !rest.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')')) {
        return None;
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 4 {
        return None;
    }
    if plus {
        let national = match digits.strip_prefix("860") {
            Some(after_trunk) => format!("86{after_trunk}"),
            None => digits,
        };
        return Some(format!("+{national}"));
    }
    let pattern = match (digits.strip_prefix("00"), digits.strip_prefix('0')) {
        (Some(intl), _) if intl.len() >= 4 => intl,
        (None, Some(national)) if national.len() >= 5 => national,
        _ => &digits,
    };
    Some(pattern.to_string())
}

/// The part of an email address to look for in stored addresses, when the
/// query looks like one: it has an `@`, no whitespace, and at least three
/// characters (pg_trgm's index cannot serve a shorter substring). Width
/// folded and lower-cased like [`Email`](crate::Email). `Zhang@` finds
/// `zhang@shwater.cn`; `@shwater.cn` finds everyone at that domain.
pub fn email_fragment_query(query: &str) -> Option<String> {
    let s = width_fold(query).trim().to_lowercase();
    let looks_like_email = s.contains('@') && s.chars().count() >= 3 && !s.chars().any(char::is_whitespace);
    looks_like_email.then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Phone;
    use proptest::prelude::*;

    #[test]
    fn fragments_of_chinese_numbers() {
        for (typed, want) in [
            ("13800138000", Some("13800138000")),
            ("138-0013-8000", Some("13800138000")),
            ("１３８００１３８０００", Some("13800138000")),
            ("0013 8000", Some("138000")),
            ("0571 8888", Some("5718888")),
            ("(0571) 8888-1234", Some("57188881234")),
            ("8000", Some("8000")),
            ("0138", Some("0138")),
            ("00138", Some("00138")),
            ("+86 138 0013 8000", Some("+8613800138000")),
            ("+86 0571 8888", Some("+865718888")),
            ("+1 (415) 555", Some("+1415555")),
            ("008613800138000", Some("8613800138000")),
            ("138", None),
            ("北京燃气", None),
            ("138 燃气", None),
            ("138+0013", None),
            ("", None),
        ] {
            assert_eq!(phone_digits_query(typed).as_deref(), want, "{typed:?}");
        }
    }

    #[test]
    fn the_pattern_is_found_in_the_stored_number() {
        let stored = Phone::parse("13800138000").map(|p| p.as_str().to_string()).unwrap_or_default();
        for typed in ["13800138000", "0013 8000", "+86 138 0013", "138 0013 8000", "0086 138 0013 8000", "8000"] {
            let pattern = phone_digits_query(typed).unwrap_or_default();
            assert!(stored.contains(&pattern), "{typed:?} → {pattern:?} not in {stored}");
        }
        let landline = Phone::parse("010-6552 1234").map(|p| p.as_str().to_string()).unwrap_or_default();
        assert_eq!(landline, "+861065521234");
        for typed in ["010 6552", "(010) 65521234", "+86 010 6552", "6552 1234"] {
            let pattern = phone_digits_query(typed).unwrap_or_default();
            assert!(landline.contains(&pattern), "{typed:?} → {pattern:?} not in {landline}");
        }
    }

    #[test]
    fn email_fragments() {
        assert_eq!(email_fragment_query(" ZHANG@shwater.cn ").as_deref(), Some("zhang@shwater.cn"));
        assert_eq!(email_fragment_query("zhang@").as_deref(), Some("zhang@"));
        assert_eq!(email_fragment_query("@shwater.cn").as_deref(), Some("@shwater.cn"));
        assert_eq!(email_fragment_query("a@"), None);
        assert_eq!(email_fragment_query("zhang san"), None);
        assert_eq!(email_fragment_query("a @b.cn"), None);
    }

    proptest! {
        #[test]
        fn a_typed_part_of_a_stored_mobile_is_found(mobile in "1[3-9][0-9]{9}", start in 0usize..7, len in 4usize..12) {
            let stored = Phone::parse(&mobile).map_err(|e| TestCaseError::fail(e.reason))?;
            let end = (start + len).min(mobile.len());
            prop_assume!(end - start >= 4);
            let pattern = phone_digits_query(&mobile[start..end]).unwrap_or_default();
            prop_assert!(stored.as_str().contains(&pattern), "{} → {}", &mobile[start..end], pattern);
        }

        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let _ = phone_digits_query(&s);
            let _ = email_fragment_query(&s);
        }
    }
}

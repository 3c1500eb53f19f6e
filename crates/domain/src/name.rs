//! Names normalised for matching (CUS-2 duplicate detection, search): trimmed,
//! full-width forms folded to their ASCII/half-width equivalents, whitespace
//! collapsed and case folded. Chinese characters pass through unchanged.

/// Folds full-width ASCII variants (U+FF01..U+FF5E) to ASCII and the
/// ideographic space (U+3000) to a space. Chinese input methods routinely
/// produce `１３８ ００１３` or `ＡＢＣ公司`.
pub fn width_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// The form of a name used for duplicate detection and fuzzy search.
pub fn normalize_for_match(s: &str) -> String {
    let folded = width_fold(s);
    let mut out = String::with_capacity(folded.len());
    for word in folded.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn folds_full_width_and_case() {
        assert_eq!(normalize_for_match("  ＡＢＣ　Gas  Co. "), "abc gas co.");
        assert_eq!(normalize_for_match("北京燃气集团"), "北京燃气集团");
        assert_eq!(normalize_for_match("Ｚｈａｎｇ　San"), "zhang san");
    }

    #[test]
    fn width_fold_maps_digits() {
        assert_eq!(width_fold("１３８００１３８０００"), "13800138000");
    }

    proptest! {
        #[test]
        fn normalizing_is_idempotent(s in "\\PC{0,40}") {
            let once = normalize_for_match(&s);
            prop_assert_eq!(normalize_for_match(&once), once);
        }

        #[test]
        fn full_width_equals_half_width(s in "[a-zA-Z0-9]{1,20}") {
            let full: String = s.chars().map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)).collect();
            prop_assert_eq!(normalize_for_match(&full), normalize_for_match(&s));
        }

        #[test]
        fn never_has_outer_or_double_spaces(s in "[ a-z\u{3000}]{0,30}") {
            let n = normalize_for_match(&s);
            prop_assert!(!n.starts_with(' ') && !n.ends_with(' ') && !n.contains("  "));
        }
    }
}

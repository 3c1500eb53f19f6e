//! How well a search query matches the best part of a name, for ranking the
//! candidates the index found.

/// Characters of either side looked at; longer inputs are truncated so that
/// one score costs at most 200 × 200 steps and no heap allocation.
pub const FUZZY_MAX_CHARS: usize = 200;

/// 1 − d / |query|, where d is the fewest character edits (insert, delete,
/// substitute) that turn `query` into some substring of `text` (Sellers'
/// approximate substring matching), counted in characters, so a Chinese
/// character is one. 1.0 exactly when `query` occurs in `text`, 0.0 when
/// nothing of it does; an empty query scores 1.0. Only the first
/// [`FUZZY_MAX_CHARS`] characters of each side count.
///
/// `fuzzy_score("华闰燃气", "杭州华润燃气有限公司")` is 0.75: one substitution
/// in four characters.
pub fn fuzzy_score(query: &str, text: &str) -> f64 {
    let mut q = ['\0'; FUZZY_MAX_CHARS];
    let mut n = 0;
    for (slot, c) in q.iter_mut().zip(query.chars()) {
        *slot = c;
        n += 1;
    }
    if n == 0 {
        return 1.0;
    }
    let q = &q[..n];
    // dist[i]: edits between q[..i] and the best substring of the text that
    // ends at the current text position. dist[0] stays 0 because a match may
    // start anywhere in the text; before any text, q[..i] costs i deletions.
    let mut dist = [0u16; FUZZY_MAX_CHARS + 1];
    for (i, d) in dist.iter_mut().enumerate().take(n + 1) {
        *d = i as u16;
    }
    let mut best = n as u16;
    for t in text.chars().take(FUZZY_MAX_CHARS) {
        let mut diagonal = dist[0];
        for (i, &qc) in q.iter().enumerate() {
            let left = dist[i + 1];
            let substituted = diagonal + u16::from(qc != t);
            dist[i + 1] = substituted.min(left + 1).min(dist[i] + 1);
            diagonal = left;
        }
        best = best.min(dist[n]);
        if best == 0 {
            break;
        }
    }
    1.0 - f64::from(best) / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scores_against_the_best_part_of_the_name() {
        assert_eq!(fuzzy_score("华闰燃气", "杭州华润燃气有限公司"), 0.75);
        assert_eq!(fuzzy_score("华润", "杭州华润燃气有限公司"), 1.0);
        assert_eq!(fuzzy_score("北京燃汽集团", "北京燃气集团"), 1.0 - 1.0 / 6.0);
        assert_eq!(fuzzy_score("华润燃气", "华燃气"), 0.75);
        assert_eq!(fuzzy_score("abc logistic", "abc logistics"), 1.0);
        assert_eq!(fuzzy_score("万科", "华润燃气"), 0.0);
        assert_eq!(fuzzy_score("", "华润"), 1.0);
        assert_eq!(fuzzy_score("华润", ""), 0.0);
    }

    #[test]
    fn long_inputs_are_truncated() {
        let long = "燃".repeat(1000);
        assert_eq!(fuzzy_score(&long, &long), 1.0);
        assert_eq!(fuzzy_score("华润", &format!("{long}华润")), 0.0);
    }

    proptest! {
        #[test]
        fn one_exactly_for_substrings(q in "[华润燃气ab]{1,8}", t in "[华润燃气ab]{0,20}") {
            let s = fuzzy_score(&q, &t);
            prop_assert!((0.0..=1.0).contains(&s));
            prop_assert_eq!(s == 1.0, t.contains(&q), "q={} t={} s={}", q, t, s);
        }

        #[test]
        fn a_query_inside_a_name_scores_one(pre in "\\PC{0,20}", q in "\\PC{1,20}", post in "\\PC{0,20}") {
            prop_assert_eq!(fuzzy_score(&q, &format!("{pre}{q}{post}")), 1.0);
        }

        #[test]
        fn never_panics_and_stays_in_range(q in "\\PC{0,60}", t in "\\PC{0,60}") {
            let s = fuzzy_score(&q, &t);
            prop_assert!((0.0..=1.0).contains(&s));
        }
    }
}

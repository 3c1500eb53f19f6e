//! Index terms ("grams") of names, the Dice similarity between gram sets, and
//! the pigeonhole bound that lets an inverted index find every candidate
//! above a similarity threshold while probing only the query's rarest grams.
//!
//! Chinese is written without spaces, so a run of CJK characters gives its
//! character bigrams (a lone character gives itself); a run of other letters
//! and digits gives pg_trgm's padded word trigrams (`abc` → `"  a"`, `" ab"`,
//! `"abc"`, `"bc "`). Every function returns a sorted, deduplicated set, the
//! form `dice` and Postgres array overlap (`&&`) work on.

use super::is_cjk;

/// Stands between the two characters of a skip-bigram (`华\t燃`). A tab can
/// never be left inside a name by `normalize_for_match`, which collapses all
/// whitespace to single spaces, so a skip-bigram can never equal a bigram, a
/// trigram or a name's text.
pub const SKIP_MARK: char = '\t';

/// Terms compared for name similarity in duplicate detection: the bigrams of
/// each CJK run (a run of one character gives that character) and the padded
/// trigrams of each Latin or digit run. `华润燃气` → `华润`, `润燃`, `燃气`.
pub fn core_grams(core: &str) -> Vec<String> {
    grams(core, false)
}

/// Terms stored for search of a normalised display or legal name: the grams
/// of `core_grams` for the whole name (not only its core) plus CJK
/// skip-bigrams, character i and i+2 joined by [`SKIP_MARK`]. A query with one
/// wrong character (`华闰燃气` for 华润燃气) shares no bigram with the name
/// around the typo, but shares the skip-bigram that jumps over it (`华\t燃`),
/// and skip-bigrams are rare, so an index capped per term still reaches it.
pub fn search_grams(name: &str) -> Vec<String> {
    grams(name, true)
}

/// Terms of a search query: the same as [`search_grams`] of a stored name, so
/// a query that is part of a name has its CJK terms among the name's.
pub fn query_grams(query: &str) -> Vec<String> {
    search_grams(query)
}

fn grams(s: &str, skips: bool) -> Vec<String> {
    let mut out = Vec::with_capacity(s.len());
    // Byte offsets of the current run's characters, plus its end.
    let mut bounds: Vec<usize> = Vec::with_capacity(s.len() / 3 + 1);
    let mut run_is_cjk = false;
    for (i, c) in s.char_indices().chain([(s.len(), ' ')]) {
        let at_end = i == s.len();
        let kind = if at_end { None } else { Some(is_cjk(c)).filter(|&cjk| cjk || c.is_alphanumeric()) };
        if !bounds.is_empty() && kind != Some(run_is_cjk) {
            bounds.push(i);
            let run = &s[bounds[0]..i];
            if run_is_cjk {
                cjk_terms(s, &bounds, skips, &mut out)
            } else {
                word_trigrams(run, &mut out)
            }
            bounds.clear();
        }
        if let Some(cjk) = kind {
            run_is_cjk = cjk;
            bounds.push(i);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// `bounds` holds the start of each character of the run and, last, its end.
fn cjk_terms(s: &str, bounds: &[usize], skips: bool, out: &mut Vec<String>) {
    let chars = bounds.len() - 1;
    if chars == 1 {
        out.push(s[bounds[0]..bounds[1]].to_string());
    }
    for w in bounds.windows(3) {
        out.push(s[w[0]..w[2]].to_string());
    }
    if skips {
        for w in bounds.windows(4) {
            let mut t = String::with_capacity(w[1] - w[0] + w[3] - w[2] + 1);
            t.push_str(&s[w[0]..w[1]]);
            t.push(SKIP_MARK);
            t.push_str(&s[w[2]..w[3]]);
            out.push(t);
        }
    }
}

/// pg_trgm's trigrams of one word: padded with two spaces before and one
/// after.
fn word_trigrams(word: &str, out: &mut Vec<String>) {
    let padded: Vec<char> = "  ".chars().chain(word.chars()).chain([' ']).collect();
    out.extend(padded.windows(3).map(|w| w.iter().collect::<String>()));
}

/// Dice coefficient 2|A∩B| / (|A|+|B|) of two sorted, deduplicated gram sets
/// (as returned above), by a merge walk. 0 when both are empty.
pub fn dice(a: &[String], b: &[String]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 0.0;
    }
    2.0 * shared(a, b) as f64 / (a.len() + b.len()) as f64
}

fn shared(a: &[String], b: &[String]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// The fewest grams a candidate must share with a query of `query_len`
/// grams to possibly reach `dice >= threshold`, for a threshold in (0, 1].
///
/// With s shared grams and m ≥ s candidate grams, Dice ≥ t needs
/// 2s ≥ t(n + m) ≥ t(n + s), so s ≥ t·n / (2 − t), and s ≥ 1 since Dice is 0
/// without a shared gram. This is tight (a candidate made of exactly s of the
/// query's grams reaches it) and never below ⌈t(n+1)/2⌉, the bound from
/// m ≥ 1 alone, so the probe below is never larger than that one's. The
/// division is rounded down by a hair so that float error can only make the
/// bound smaller, which costs a probe, never a missed candidate. A threshold
/// above 1 gives `query_len + 1` (nothing can reach it); at or below 0 every
/// row qualifies and no number of shared grams is needed, which an index
/// probe cannot express, so 1 is returned and the caller must not probe.
pub fn min_shared_for(threshold: f64, query_len: usize) -> usize {
    if threshold > 1.0 {
        return query_len + 1;
    }
    if threshold.is_nan() || threshold <= 0.0 {
        return 1;
    }
    let bound = threshold * query_len as f64 / (2.0 - threshold);
    ((bound - 1e-9).ceil().max(1.0)) as usize
}

/// The grams to probe the index with so that no candidate reaching
/// `dice >= threshold` is missed. A candidate sharing at least m of the
/// query's n grams shares at least one of any n − m + 1 of them
/// (pigeonhole), so the n − m + 1 rarest are enough: lowest `rarity` first
/// (e.g. the gram's document frequency), ties by the gram's text. Empty when
/// no candidate can reach the threshold. The query grams need not be sorted;
/// duplicates are counted once.
pub fn probe_subset(query_grams: &[String], threshold: f64, rarity: impl Fn(&str) -> f64) -> Vec<String> {
    let mut grams: Vec<(f64, &str)> = query_grams.iter().map(|g| (rarity(g), g.as_str())).collect();
    grams.sort_unstable_by(|a, b| a.1.cmp(b.1));
    grams.dedup_by(|a, b| a.1 == b.1);
    let n = grams.len();
    let m = min_shared_for(threshold, n);
    if m > n {
        return Vec::new();
    }
    grams.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
    grams.into_iter().take(n - m + 1).map(|(_, g)| g.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cjk_bigrams_and_latin_trigrams() {
        assert_eq!(core_grams("华润燃气"), v(&["华润", "润燃", "燃气"]));
        assert_eq!(core_grams("张"), v(&["张"]));
        assert_eq!(core_grams("abc"), v(&["  a", " ab", "abc", "bc "]));
        assert_eq!(core_grams("3m中国 a"), v(&["  3", "  a", " 3m", " a ", "3m ", "中国"]));
        assert_eq!(core_grams("华 润"), v(&["华", "润"]));
        assert!(core_grams("").is_empty());
        assert!(core_grams(".-()").is_empty());
    }

    #[test]
    fn search_grams_add_skip_bigrams() {
        assert_eq!(search_grams("华润燃气"), v(&["华\t燃", "华润", "润\t气", "润燃", "燃气"]));
        assert_eq!(query_grams("华润"), v(&["华润"]));
    }

    #[test]
    fn a_typo_still_shares_a_rare_term() {
        let stored = search_grams("杭州华润燃气有限公司");
        let query = query_grams("华闰燃气");
        let shared: Vec<_> = query.iter().filter(|g| stored.contains(g)).cloned().collect();
        assert_eq!(shared, v(&["华\t燃", "燃气"]));
    }

    #[test]
    fn dice_of_similar_names() {
        let a = core_grams("华润燃气");
        assert_eq!(dice(&a, &a), 1.0);
        assert_eq!(dice(&a, &core_grams("燃气")), 0.5);
        assert_eq!(dice(&a, &core_grams("万科物业")), 0.0);
        assert_eq!(dice(&[], &[]), 0.0);
    }

    #[test]
    fn the_shared_gram_bound_is_tight() {
        assert_eq!(min_shared_for(0.5, 9), 3);
        assert_eq!(min_shared_for(1.0, 5), 5);
        assert_eq!(min_shared_for(0.5, 3), 1);
        assert_eq!(min_shared_for(0.5, 0), 1);
        assert_eq!(min_shared_for(1.5, 4), 5);
        assert_eq!(min_shared_for(0.0, 4), 1);
        for n in 1..40 {
            for t in [0.3, 0.5, 0.6, 0.75, 0.8, 0.9, 1.0] {
                let m = min_shared_for(t, n);
                // A candidate made of exactly m query grams reaches t; with
                // one gram fewer no candidate can.
                assert!(2.0 * m as f64 / (n + m) as f64 >= t - 1e-12, "t={t} n={n}");
                assert!(m == 1 || 2.0 * (m - 1) as f64 / ((n + m - 1) as f64) < t, "t={t} n={n}");
                assert!(m as f64 >= (t * (n as f64 + 1.0) / 2.0 - 1e-9).ceil());
            }
        }
    }

    #[test]
    fn probes_the_rarest_grams() {
        let q = core_grams("华润燃气有限");
        let common = |g: &str| if g == "燃气" || g == "有限" { 1000.0 } else { 1.0 };
        // n = 5, m = 2 at 0.5: four probes, the rare ones first.
        assert_eq!(probe_subset(&q, 0.5, common), v(&["华润", "气有", "润燃", "有限"]));
        assert!(probe_subset(&q, 1.5, common).is_empty());
        assert!(probe_subset(&[], 0.5, common).is_empty());
    }

    fn gram_set() -> impl Strategy<Value = Vec<String>> {
        prop::collection::btree_set("[a-e]{1,2}", 0..10).prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        #[test]
        fn grams_are_sorted_sets_and_never_panic(s in "\\PC{0,60}") {
            for g in [core_grams(&s), search_grams(&s)] {
                prop_assert!(g.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(g.iter().all(|t| !t.is_empty()));
            }
        }

        #[test]
        fn search_grams_contain_core_grams(s in "[华润燃气有限公司 abc]{0,20}") {
            let search = search_grams(&s);
            prop_assert!(core_grams(&s).iter().all(|g| search.binary_search(g).is_ok()));
        }

        #[test]
        fn dice_is_symmetric_bounded_and_reflexive(a in gram_set(), b in gram_set()) {
            let d = dice(&a, &b);
            prop_assert_eq!(d, dice(&b, &a));
            prop_assert!((0.0..=1.0).contains(&d));
            prop_assert_eq!(dice(&a, &a), if a.is_empty() { 0.0 } else { 1.0 });
        }

        #[test]
        fn probing_never_misses_a_candidate_above_the_threshold(
            a in gram_set(),
            b in gram_set().prop_filter("candidate has a gram", |b| !b.is_empty()),
            t in 0.01f64..=1.0,
            seed in any::<u64>(),
        ) {
            let rarity = |g: &str| g.bytes().fold(seed, |h, x| h.rotate_left(5) ^ u64::from(x)).wrapping_mul(0x9E37_79B9_7F4A_7C15) as f64;
            let probe = probe_subset(&a, t, rarity);
            if dice(&a, &b) >= t {
                prop_assert!(probe.iter().any(|g| b.contains(g)), "a={a:?} b={b:?} t={t} probe={probe:?}");
            }
        }
    }
}

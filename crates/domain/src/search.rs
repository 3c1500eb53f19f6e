//! Index terms and scores for customer search and duplicate detection (CUS-2)
//! over a million customers, most of them Chinese companies. Pure and cheap
//! enough to run once per row on import.
//!
//! How the customers service uses it, for a name already passed through
//! [`normalize_for_match`](crate::normalize_for_match):
//! - duplicates: store `core_grams(&name_core(name))`, one row per gram in a
//!   narrow table keyed by region and gram; for a new name, count the grams
//!   each customer of the region shares with it in that index and keep the
//!   rows whose `dice` reaches the threshold (`probe_subset` and
//!   `min_shared_for` give the pigeonhole bound for an index that can only
//!   answer "who holds this gram");
//! - search: store `search_grams` and `pinyin_terms` of each name's core the
//!   same way (keyed by term and owner); select candidates by the query's
//!   terms (capped per term; skip-bigrams make a one-character typo
//!   findable) and rank them with `fuzzy_score` and the stored
//!   `pinyin_full`/`pinyin_initials` text;
//! - phones and emails: `phone_digits_query` and `email_fragment_query` give
//!   the substring to look for in the stored canonical forms.
//!
//! Cost, measured with `cargo test -p crm-domain --release -- --ignored
//! --nocapture cost_per_name` over 100,000 generated company names of 5 to
//! 23 characters on the 2-core dev machine, per name: `name_core` 0.55 µs,
//! `core_grams(&name_core(..))` 0.7 µs, `search_grams` 1.5 µs, `pinyin_full`
//! and `pinyin_initials` 0.3 µs each, all of them together 3.5 µs, so about
//! 3.5 s of one core per million rows imported; `fuzzy_score` of a
//! 4-character query against a name 0.1 µs. The first call also builds the
//! place and pinyin tables, in under a millisecond.

mod core_name;
mod fragments;
mod fuzzy;
mod grams;
mod places;
mod romanize;

pub use core_name::name_core;
pub use fragments::{email_fragment_query, phone_digits_query};
pub use fuzzy::{FUZZY_MAX_CHARS, fuzzy_score};
pub use grams::{SKIP_MARK, core_grams, dice, min_shared_for, probe_subset, query_grams, search_grams};
pub use romanize::{pinyin_full, pinyin_initials, pinyin_query_terms, pinyin_terms};

/// Whether `c` is written without spaces between words and so is indexed by
/// character bigrams: CJK ideographs (with extensions and compatibility
/// forms), kana and hangul.
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3007}'
        | '\u{3040}'..='\u{30FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{AC00}'..='\u{D7AF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3134F}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize_for_match;
    use std::time::Instant;

    /// 100,000 company names from realistic parts, deterministic.
    fn company_names() -> Vec<String> {
        let places = ["杭州", "浙江省杭州市", "深圳市", "北京", "上海市浦东新区", "苏州工业园区", "", "广东省普宁市"];
        let brands = ["华润", "万科", "清源华衍", "中天", "鸿达", "金石", "永盛", "恒通", "新世纪", "ABC"];
        let trades = ["燃气", "物业服务", "水务", "建材", "物流", "电子科技", "餐饮管理", "纺织", "贸易", "机械制造"];
        let forms = ["有限公司", "股份有限公司", "集团有限公司", "有限公司杭州分公司", "厂", "商行", "(杭州)有限公司"];
        (0..100_000)
            .map(|i: usize| {
                let (p, b, t, f) = (i % 8, (i / 8) % 10, (i / 80) % 10, (i / 800) % 7);
                normalize_for_match(&format!("{}{}{}{}", places[p], brands[b], trades[t], forms[f]))
            })
            .collect()
    }

    /// Prints the cost per name of each step; no assertion on time.
    #[test]
    #[ignore = "timing: run with --release -- --ignored --nocapture"]
    fn cost_per_name() {
        let names = company_names();
        let per_name = |label: &str, f: &dyn Fn(&str) -> usize| {
            let start = Instant::now();
            let total: usize = names.iter().map(|n| f(n)).sum();
            let ns = start.elapsed().as_nanos() as f64 / names.len() as f64;
            println!("{label:<28} {ns:>8.0} ns/name  ({total})");
        };
        per_name("name_core", &|n| name_core(n).len());
        per_name("core_grams(name_core)", &|n| core_grams(&name_core(n)).len());
        per_name("search_grams", &|n| search_grams(n).len());
        per_name("pinyin_full", &|n| pinyin_full(n).len());
        per_name("pinyin_initials", &|n| pinyin_initials(n).len());
        per_name("fuzzy_score(华闰燃气, name)", &|n| (fuzzy_score("华闰燃气", n) * 4.0) as usize);
        per_name("all of the above", &|n| {
            name_core(n).len()
                + core_grams(&name_core(n)).len()
                + search_grams(n).len()
                + pinyin_full(n).len()
                + pinyin_initials(n).len()
        });
    }

    #[test]
    fn a_company_end_to_end() {
        let name = normalize_for_match("杭州华润燃气有限公司");
        let core = name_core(&name);
        assert_eq!(core, "华润燃气");
        let other = core_grams(&name_core(&normalize_for_match("华润燃气（杭州）有限公司")));
        assert_eq!(dice(&core_grams(&core), &other), 1.0);
        assert_eq!(pinyin_initials(&core), "hrrq");
        assert!(fuzzy_score("华闰燃气", &name) >= 0.75);
    }

    #[test]
    fn cjk_covers_chinese_and_not_latin() {
        assert!("华润燃气〇".chars().all(is_cjk));
        assert!(!"abc 123 ()-".chars().any(is_cjk));
        assert!(is_cjk('𠀀'));
    }
}

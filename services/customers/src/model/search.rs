//! What a customer is found by, and how well a candidate matches a query
//! (CUS-1 search, CUS-2 duplicate names). The index selects candidates (see
//! `store::search`); everything here decides, on those few rows only.

use crm_domain::{
    Email, Invalid, Phone, normalize_for_match,
    page::fingerprint,
    search::{
        self, core_grams, dice, fuzzy_score, name_core, pinyin_full, pinyin_initials, pinyin_query_terms, pinyin_terms,
        search_grams,
    },
    width_fold,
};

/// The version of the terms below. Rows stored with an older one are
/// re-indexed in the background (`store::reindex_batch`); raise it whenever
/// the terms change.
pub const SEARCH_VERSION: i16 = 2;

/// A Chinese query with a wrong character that sounds like the right one.
pub const HOMOPHONE_SCORE: f64 = 0.75;

/// Candidates scoring below this are not hits.
pub const MIN_SCORE: f64 = 0.5;

/// CUS-2: cores of names at least this similar (Dice over their bigrams) in
/// the same region are likely the same customer. One wrong character in a
/// four-character core (华润燃气 / 华润燃汽) is 0.67.
pub const DUPLICATE_NAME_SIMILARITY: f64 = 0.6;

/// The stored terms of a customer's names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameTerms {
    /// What the customer is found by ([`index_terms`] of both names): the
    /// bigrams and skip-bigrams of each name's distinctive part (Latin: word
    /// trigrams), their pinyin terms (`py:hua run`, `pi:hrr`), and the
    /// name's leading place (`杭州`).
    pub search_grams: Vec<String>,
    /// Bigrams of the distinctive parts of both names (duplicates).
    pub core_grams: Vec<String>,
    /// The distinctive part of the display name.
    pub name_core: String,
    /// Pinyin in full and by initials, and the Latin words of the names
    /// (for scoring; found through the terms above).
    pub search_text: String,
}

impl NameTerms {
    pub fn of(display_name: &str, legal_name: &str) -> Self {
        let display = normalize_for_match(display_name);
        let legal = normalize_for_match(legal_name);
        let names: Vec<&str> =
            if legal.is_empty() || legal == display { vec![&display] } else { vec![&display, &legal] };
        let mut grams = Vec::new();
        let mut cores = Vec::new();
        let mut words: Vec<String> = Vec::new();
        for n in &names {
            grams.extend(index_terms(n));
            cores.extend(core_grams(&name_core(n)));
            for w in [pinyin_full(n), pinyin_initials(n)] {
                if !w.is_empty() && !words.contains(&w) {
                    words.push(w);
                }
            }
            if n.chars().any(|c| c.is_ascii_alphanumeric()) && !words.iter().any(|w| w == *n) {
                words.push((*n).to_string());
            }
        }
        grams.sort();
        grams.dedup();
        cores.sort();
        cores.dedup();
        NameTerms {
            search_grams: grams,
            core_grams: cores,
            name_core: name_core(&display),
            search_text: words.join(" "),
        }
    }
}

/// The search terms of one normalised name, or of a Chinese query: those of
/// its distinctive part (`name_core`: without city, district and legal
/// form) and the bigram of a leading place. 有限公司 was in a quarter of all
/// rows and told none of them apart; a query's own city or legal form still
/// counts in its score, which reads the whole name.
pub fn index_terms(name: &str) -> Vec<String> {
    let compact: String = name.chars().filter(|c| *c != ' ').collect();
    let core = name_core(name);
    let mut terms = search_grams(&core);
    terms.extend(pinyin_terms(&core));
    let lead: String = compact.chars().take(2).collect();
    if lead.chars().count() == 2 && lead.chars().all(is_cjk) && !core.replace(' ', "").starts_with(&lead) {
        terms.push(lead);
    }
    terms.sort();
    terms.dedup();
    terms
}

/// A search query, parsed once into everything the index and the scoring
/// look for.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The normalised query.
    pub norm: String,
    /// For a query with Chinese characters: the query without spaces.
    pub cjk: Option<String>,
    /// Terms to look up in `search_grams`: a Chinese query's bigrams, a Latin
    /// query's pinyin terms and word trigrams.
    pub grams: Vec<String>,
    /// The Chinese query's pinyin without tones (`华闰燃气` → `huarunranqi`):
    /// a typo made with a pinyin input method sounds like the name.
    pub cjk_pinyin: Option<String>,
    /// For a Latin query (pinyin, Latin names): its letters and digits, as
    /// typed and without spaces; looked for inside `search_text`.
    pub latin: Option<String>,
    pub latin_compact: Option<String>,
    /// The query as a whole phone number or email address.
    pub phone: Option<String>,
    pub email: Option<String>,
    /// Digits to find at the start of a stored number (after `+` or `+86`).
    pub phone_prefixes: Vec<String>,
    /// Digits to find at the end of a stored number.
    pub phone_suffix: Option<String>,
    /// An email's start, or its domain (with its `@`).
    pub email_prefix: Option<String>,
    pub email_suffix: Option<String>,
    /// Identifies the query in page tokens.
    pub fingerprint: u64,
}

impl SearchQuery {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let norm = normalize_for_match(raw);
        if norm.chars().count() < 2 {
            return Err(Invalid::new("must be at least 2 characters"));
        }
        let has_cjk = norm.chars().any(is_cjk);
        let cjk = has_cjk.then(|| norm.replace(' ', ""));
        // The terms a matching name was indexed by (a typo that sounds
        // right shares the pinyin terms of the name meant).
        let mut grams = match &cjk {
            Some(c) => index_terms(c),
            None => Vec::new(),
        };
        let cjk_pinyin = cjk.as_deref().map(pinyin_full).filter(|p| !p.is_empty());
        let folded = width_fold(raw).trim().to_lowercase();
        let ascii_word = !has_cjk
            && folded.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_' | '\'' | '&'));
        let latin = (ascii_word && folded.chars().any(|c| c.is_ascii_alphabetic())).then(|| norm.clone());
        let latin_compact = latin.as_ref().map(|l| l.chars().filter(char::is_ascii_alphanumeric).collect::<String>());
        if let Some(l) = &latin {
            // Typed pinyin, then the word trigrams of Latin names: in this
            // order of selectivity, which the lookup keeps among terms it
            // has no statistics for.
            for t in pinyin_query_terms(l).into_iter().chain(search::query_grams(l)) {
                if !grams.contains(&t) {
                    grams.push(t);
                }
            }
        }
        let phone = Phone::parse(raw).ok().map(|p| p.as_str().to_string());
        let email = Email::parse(raw).ok().map(|e| e.as_str().to_string());
        let (mut phone_prefixes, mut phone_suffix) = (Vec::new(), None);
        if let Some(d) = search::phone_digits_query(raw) {
            if d.starts_with('+') {
                phone_prefixes.push(d);
            } else {
                phone_prefixes.push(format!("+86{d}"));
                phone_prefixes.push(format!("+{d}"));
                phone_suffix = Some(d);
            }
        }
        let (mut email_prefix, mut email_suffix) = (None, None);
        if let Some(f) = search::email_fragment_query(raw) {
            if f.starts_with('@') {
                email_suffix = Some(f);
            } else {
                email_prefix = Some(f);
            }
        } else if let Some(l) = &latin
            && !l.contains(' ')
            && l.len() >= 3
        {
            // A word may be the start of an address, or its domain.
            email_prefix = Some(l.clone());
            if l.contains('.') {
                email_suffix = Some(format!("@{l}"));
            }
        }
        let fingerprint = fingerprint(&[b"search", norm.as_bytes()]);
        Ok(SearchQuery {
            norm,
            cjk,
            grams,
            cjk_pinyin,
            latin,
            latin_compact,
            phone,
            email,
            phone_prefixes,
            phone_suffix,
            email_prefix,
            email_suffix,
            fingerprint,
        })
    }

    /// Whether any contact point (phone, email) could match.
    pub fn looks_for_contact_points(&self) -> bool {
        self.phone.is_some()
            || self.email.is_some()
            || !self.phone_prefixes.is_empty()
            || self.email_prefix.is_some()
            || self.email_suffix.is_some()
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{3134F}')
}

/// What the index returned of one customer, for scoring.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    pub display_name: String,
    pub legal_name: String,
    pub search_text: String,
    /// Its phones and emails (its own and its contacts'), when the query
    /// may match one.
    pub points: Vec<String>,
}

/// How well `c` matches `q`, 0..1; below `MIN_SCORE` it is no hit.
pub fn score(q: &SearchQuery, c: &Candidate) -> f64 {
    let mut best: f64 = 0.0;
    if let Some(query) = &q.cjk {
        for name in [&c.display_name, &c.legal_name] {
            if name.is_empty() {
                continue;
            }
            best = best.max(name_score(query, q.cjk_pinyin.as_deref(), &normalize_for_match(name).replace(' ', "")));
        }
    }
    if let (Some(latin), Some(compact)) = (&q.latin, &q.latin_compact) {
        best = best.max(latin_score(latin, compact, &c.search_text));
    }
    for p in &c.points {
        best = best.max(point_score(q, p));
    }
    best
}

/// A Chinese query against one name: a substring scores 0.8 and more the
/// more of the name's distinctive part it covers; otherwise the best
/// partial match (one wrong character in four: 0.6), raised to
/// `HOMOPHONE_SCORE` when the query sounds like part of the name (`华闰燃气`
/// for 华润燃气: the pinyin input method's usual slip, so it outranks
/// 华能燃气, one wrong character too but another sound), or the similarity of
/// the distinctive parts (the same company named in another order).
fn name_score(query: &str, query_pinyin: Option<&str>, name: &str) -> f64 {
    let f = fuzzy_score(query, name);
    let by_text = if f >= 1.0 {
        let core = name_core(name);
        let covered = query.chars().count() as f64 / core.chars().count().max(1) as f64;
        0.8 + 0.2 * covered.min(1.0)
    } else if f >= 0.5 && query.chars().count() >= 3 && query_pinyin.is_some_and(|p| pinyin_full(name).contains(p)) {
        HOMOPHONE_SCORE
    } else {
        0.8 * f
    };
    let by_core = 0.85 * dice(&core_grams(&name_core(query)), &core_grams(&name_core(name)));
    by_text.max(by_core)
}

/// A Latin query (pinyin, initials, Latin name words) against the stored
/// words: inside a word scores 0.6, more for covering more of it, and for
/// matching from its start.
fn latin_score(latin: &str, compact: &str, search_text: &str) -> f64 {
    let mut best: f64 = 0.0;
    if search_text.contains(latin) && latin.contains(' ') {
        best = 0.9;
    }
    for word in search_text.split(' ') {
        for needle in [latin, compact] {
            if needle.is_empty() || needle.contains(' ') {
                continue;
            }
            if let Some(at) = word.find(needle) {
                let covered = needle.len() as f64 / word.len().max(1) as f64;
                let start = if at == 0 { 0.1 } else { 0.0 };
                best = best.max(0.6 + 0.3 * covered + start);
            }
        }
    }
    best.min(1.0)
}

/// A phone or email of the candidate against the query: the whole value
/// 1.0; its start or end 0.7 and more for covering more of it.
fn point_score(q: &SearchQuery, value: &str) -> f64 {
    if q.phone.as_deref() == Some(value) || q.email.as_deref() == Some(value) {
        return 1.0;
    }
    let covered = |part: &str| 0.7 + 0.25 * (part.len() as f64 / value.len().max(1) as f64);
    let mut best: f64 = 0.0;
    for p in &q.phone_prefixes {
        if value.starts_with(p.as_str()) {
            best = best.max(covered(p));
        }
    }
    if let Some(s) = &q.phone_suffix
        && value.starts_with('+')
        && value.ends_with(s.as_str())
    {
        best = best.max(covered(s));
    }
    if let Some(p) = &q.email_prefix
        && value.contains('@')
        && value.starts_with(p.as_str())
    {
        best = best.max(covered(p));
    }
    if let Some(s) = &q.email_suffix
        && value.ends_with(s.as_str())
    {
        best = best.max(covered(s));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> SearchQuery {
        SearchQuery::parse(s).unwrap_or_else(|e| panic!("{s}: {}", e.reason))
    }

    fn company(display: &str, legal: &str) -> Candidate {
        let t = NameTerms::of(display, legal);
        Candidate { display_name: display.into(), legal_name: legal.into(), search_text: t.search_text, points: vec![] }
    }

    #[test]
    fn a_name_part_a_typo_and_pinyin_all_find_a_chinese_company() {
        let c = company("华润燃气", "杭州华润燃气有限公司");
        for query in ["华润", "华润燃气", "华闰燃气", "huarun", "hrrq", "HuaRun", "ｈｒｒｑ"] {
            assert!(score(&q(query), &c) >= MIN_SCORE, "{query}: {}", score(&q(query), &c));
        }
        assert!(score(&q("万科"), &c) < MIN_SCORE);
        assert!(score(&q("华闰"), &c) < MIN_SCORE, "one wrong of two characters is no match");
    }

    /// Issue 11: among many lookalikes one wrong character away, the one the
    /// typo sounds like comes first.
    #[test]
    fn a_homophone_typo_outranks_other_one_character_lookalikes() {
        for typo in ["华闰燃气", "化润燃气", "华润燃汽"] {
            let query = q(typo);
            let meant = score(&query, &company("华润燃气", "杭州华润燃气有限公司"));
            let other = score(&query, &company("华能燃气", "杭州华能燃气有限公司"));
            assert!(meant > other && meant >= MIN_SCORE, "{typo}: {meant} {other}");
            assert!(meant < score(&query, &company(typo, "")), "{typo}: the exact name still wins");
        }
    }

    #[test]
    fn an_exact_name_outranks_a_longer_name_and_a_typo() {
        let query = q("华润燃气");
        let exact = score(&query, &company("华润燃气", ""));
        let longer = score(&query, &company("华润燃气工程设计院", ""));
        let typo = score(&query, &company("华润燃汽", ""));
        assert!(exact > longer && longer > typo, "{exact} {longer} {typo}");
    }

    #[test]
    fn terms_hold_both_names_their_cores_and_pinyin() {
        let t = NameTerms::of("华润燃气", "杭州华润燃气有限公司");
        assert!(t.search_grams.contains(&"杭州".to_string()));
        assert!(t.search_grams.contains(&"py:hua run".to_string()) && t.search_grams.contains(&"pi:hrr".to_string()));
        for form in ["有限", "公司", "py:gong si", "州华"] {
            assert!(!t.search_grams.contains(&form.to_string()), "{form} tells no company apart");
        }
        assert!(t.search_grams.contains(&format!("华{}燃", search::SKIP_MARK)));
        assert_eq!(t.name_core, "华润燃气");
        assert!(t.core_grams.contains(&"润燃".to_string()) && !t.core_grams.contains(&"杭州".to_string()));
        assert!(t.search_text.split(' ').any(|w| w == "hrrq"));
        assert!(t.search_text.split(' ').any(|w| w == "hangzhouhuarunranqiyouxiangongsi"));
        let latin = NameTerms::of("ＡＢＣ Logistics", "");
        assert!(latin.search_text.contains("abc logistics"));
    }

    #[test]
    fn phones_and_emails_are_found_whole_or_by_their_ends() {
        let mut c = company("北京燃气集团", "");
        c.points = vec!["+8613800138000".into(), "zhang@shwater.cn".into()];
        for query in [
            "13800138000",
            "+86 138 0013 8000",
            "1380013",
            "0013 8000",
            "ZHANG@shwater.cn",
            "zhang@",
            "@shwater.cn",
            "shwater.cn",
        ] {
            assert!(score(&q(query), &c) >= MIN_SCORE, "{query}");
        }
        assert_eq!(score(&q("13800138000"), &c), 1.0);
        assert!(score(&q("13900"), &c) < MIN_SCORE);
    }

    /// The re-index job's partial index of stale rows is bounded by the
    /// current version (a bump needs a migration that re-creates it).
    #[test]
    fn the_index_of_stale_rows_is_bounded_by_this_version() {
        let sql = include_str!("../../migrations/20261202000001_search_terms.sql");
        assert!(sql.contains(&format!("WHERE search_version < {SEARCH_VERSION};")));
    }

    #[test]
    fn a_chinese_query_looks_up_the_terms_its_name_was_indexed_by() {
        let q = q("杭州华闰燃气有限公司");
        let stored = NameTerms::of("华润燃气", "杭州华润燃气有限公司").search_grams;
        for shared in ["杭州", "燃气", "py:hua run", "py:run ran", "pi:hrr"] {
            assert!(q.grams.contains(&shared.to_string()) && stored.contains(&shared.to_string()), "{shared}");
        }
        assert!(!q.grams.iter().any(|t| t.contains("公司") || t.contains("有限")), "{:?}", q.grams);
    }

    #[test]
    fn too_short_queries_are_refused() {
        assert!(SearchQuery::parse(" 华 ").is_err());
        assert!(SearchQuery::parse("a").is_err());
        assert!(SearchQuery::parse("华润").is_ok());
    }
}

//! Pinyin spellings of names, so that `hrrq` or `huarun` finds 华润燃气.
//!
//! Each character gets the `pinyin` crate's most common reading, except where
//! a word below says otherwise: the readings that company and place names
//! need and the crate's default gets wrong (it reads 长 as zhang, 重庆 as
//! zhongqing and 银行 as yinxing). Tones are dropped and ü is written v, as
//! pinyin input methods type it.

use std::collections::HashMap;
use std::sync::LazyLock;

use pinyin::ToPinyin;

/// Single characters whose usual reading in names differs from the crate's
/// default: 长 is chang in 长城, 长江, 长安, 长沙; 都 is du in 成都, 首都;
/// 曾 is zeng as a surname.
const CHARACTERS: &[(char, &str)] = &[('长', "chang"), ('都', "du"), ('曾', "zeng")];

/// A word and the reading of each of its characters.
type WordReading = (&'static str, &'static [&'static str]);

/// Words whose reading differs from their characters' one by one (with the
/// table above applied), matched before it. Checked against the crate's
/// output: each of these is wrong without its entry, while 乐山, 丽水, 朝阳
/// and 重工 are right without one.
const WORDS: &[WordReading] = &[
    ("重庆", &["chong", "qing"]),
    ("重阳", &["chong", "yang"]),
    ("厦门", &["xia", "men"]),
    ("银行", &["yin", "hang"]),
    ("分行", &["fen", "hang"]),
    ("支行", &["zhi", "hang"]),
    ("总行", &["zong", "hang"]),
    ("商行", &["shang", "hang"]),
    ("车行", &["che", "hang"]),
    ("琴行", &["qin", "hang"]),
    ("行业", &["hang", "ye"]),
    ("行情", &["hang", "qing"]),
    ("行长", &["hang", "zhang"]),
    ("董事长", &["dong", "shi", "zhang"]),
    ("校长", &["xiao", "zhang"]),
    ("成长", &["cheng", "zhang"]),
    ("增长", &["zeng", "zhang"]),
    ("生长", &["sheng", "zhang"]),
    ("长子", &["zhang", "zi"]),
    ("蚌埠", &["beng", "bu"]),
    ("六安", &["lu", "an"]),
    ("六合", &["lu", "he"]),
    ("单县", &["shan", "xian"]),
    ("音乐", &["yin", "yue"]),
    ("乐器", &["yue", "qi"]),
    ("乐团", &["yue", "tuan"]),
    ("乐队", &["yue", "dui"]),
    ("乐清", &["yue", "qing"]),
    ("乐亭", &["lao", "ting"]),
    ("西藏", &["xi", "zang"]),
    ("藏族", &["zang", "zu"]),
    ("番禺", &["pan", "yu"]),
    ("珲春", &["hun", "chun"]),
    ("枞阳", &["zong", "yang"]),
    ("涡阳", &["guo", "yang"]),
    ("东阿", &["dong", "e"]),
    ("蔚县", &["yu", "xian"]),
    ("洪洞", &["hong", "tong"]),
    ("铅山", &["yan", "shan"]),
    ("会稽", &["kuai", "ji"]),
];

/// Words by their first character, so a name costs one hash probe per
/// character rather than a scan of the table.
static WORDS_BY_FIRST: LazyLock<HashMap<char, Vec<WordReading>>> = LazyLock::new(|| {
    let mut map: HashMap<char, Vec<_>> = HashMap::new();
    for &(word, syllables) in WORDS {
        if let Some(first) = word.chars().next() {
            map.entry(first).or_default().push((word, syllables));
        }
    }
    map
});

/// Full pinyin without tones or separators: `杭州华润燃气有限公司` →
/// `hangzhouhuarunranqiyouxiangongsi`. ASCII letters and digits are kept
/// (lower-cased), everything else without a reading is dropped.
pub fn pinyin_full(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 2);
    for_each_piece(name, |piece| match piece {
        Piece::Syllable(reading) => push_ascii(&mut out, reading),
        Piece::Latin(c) => out.push(c),
    });
    out
}

/// The first letter of each syllable: `杭州华润燃气有限公司` → `hzhrrqyxgs`.
/// ASCII letters and digits are kept as they are (`abc物流` → `abcwl`):
/// people type a Latin brand in full, not its initial.
pub fn pinyin_initials(name: &str) -> String {
    let mut out = String::with_capacity(name.len() / 2);
    for_each_piece(name, |piece| match piece {
        Piece::Syllable(reading) => push_ascii(&mut out, &reading[..reading.chars().next().map_or(0, char::len_utf8)]),
        Piece::Latin(c) => out.push(c),
    });
    out
}

/// Index terms of a name's pinyin, stored with its other search terms so
/// that typed pinyin is found by exact term lookups (no substring index):
/// - `py:hua run`: each two adjacent syllables of a run of Chinese
///   characters (a full-pinyin query gives the same pairs);
/// - `pi:hrr`: each three adjacent initials of such a run (`pi:hr` for a
///   run of two characters), for queries typed as initials.
pub fn pinyin_terms(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, out: &mut Vec<String>| {
        for w in run.windows(2) {
            out.push(format!("py:{} {}", w[0], w[1]));
        }
        let initials: Vec<char> = run.iter().filter_map(|s| s.chars().next()).collect();
        if initials.len() == 2 {
            out.push(format!("pi:{}{}", initials[0], initials[1]));
        }
        for w in initials.windows(3) {
            out.push(format!("pi:{}{}{}", w[0], w[1], w[2]));
        }
        run.clear();
    };
    for_each_piece(name, |piece| match piece {
        Piece::Syllable(reading) => {
            let mut s = String::with_capacity(reading.len());
            push_ascii(&mut s, reading);
            if !s.is_empty() {
                run.push(s);
            }
        }
        Piece::Latin(_) => flush(&mut run, &mut out),
    });
    flush(&mut run, &mut out);
    out.sort_unstable();
    out.dedup();
    out
}

/// Every plain syllable a character can be read as, to split typed pinyin.
static SYLLABLES: LazyLock<std::collections::HashSet<String>> = LazyLock::new(|| {
    let mut set = std::collections::HashSet::new();
    for c in ('\u{4E00}'..='\u{9FFF}').filter_map(|c| c.to_pinyin()) {
        let mut s = String::new();
        push_ascii(&mut s, c.plain());
        if !s.is_empty() {
            set.insert(s);
        }
    }
    set
});

/// Longest pinyin syllable (`zhuang`).
const MAX_SYLLABLE: usize = 6;
/// Splits of a typed query looked at; a few suffice for real queries.
const MAX_SPLITS: usize = 8;

/// The terms of [`pinyin_terms`] that a typed Latin query may share with a
/// stored name: the syllable pairs of each way the query splits into
/// syllables (`xian` is xian or xi an; an unfinished last syllable is left
/// out), then its initials' triples, as it may be initials (`hrrq`). Empty
/// for anything but lower-case ASCII letters (after removing spaces and
/// apostrophes, as in `xi'an`).
pub fn pinyin_query_terms(query: &str) -> Vec<String> {
    let q: String = query.chars().filter(|c| !matches!(c, ' ' | '\'')).collect::<String>().to_ascii_lowercase();
    if q.len() < 2 || !q.bytes().all(|b| b.is_ascii_lowercase()) {
        return Vec::new();
    }
    let mut pairs = Vec::new();
    let mut splits = Vec::new();
    split_syllables(&q, &mut Vec::new(), &mut splits);
    for split in &splits {
        for w in split.windows(2) {
            pairs.push(format!("py:{} {}", w[0], w[1]));
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mut initials = Vec::new();
    let b = q.as_bytes();
    if b.len() == 2 {
        initials.push(format!("pi:{q}"));
    }
    for w in b.windows(3) {
        initials.push(format!("pi:{}", String::from_utf8_lossy(w)));
    }
    initials.sort_unstable();
    initials.dedup();
    // Syllable pairs first: they are the more selective terms.
    pairs.extend(initials);
    pairs
}

fn split_syllables<'a>(rest: &'a str, current: &mut Vec<&'a str>, splits: &mut Vec<Vec<&'a str>>) {
    if splits.len() >= MAX_SPLITS {
        return;
    }
    if rest.is_empty() {
        splits.push(current.clone());
        return;
    }
    let mut any = false;
    for len in (1..=rest.len().min(MAX_SYLLABLE)).rev() {
        if SYLLABLES.contains(&rest[..len]) {
            any = true;
            current.push(&rest[..len]);
            split_syllables(&rest[len..], current, splits);
            current.pop();
        }
    }
    // An unfinished last syllable (`huarunra`): keep the finished ones.
    if !any && rest.len() < MAX_SYLLABLE && SYLLABLES.iter().any(|s| s.starts_with(rest)) {
        splits.push(current.clone());
    }
}

enum Piece<'a> {
    /// A character's (or a word's syllable's) plain reading.
    Syllable(&'a str),
    /// An ASCII letter or digit, lower-cased.
    Latin(char),
}

fn for_each_piece(name: &str, mut piece: impl FnMut(Piece<'_>)) {
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if let Some((word, readings)) =
            WORDS_BY_FIRST.get(&c).and_then(|ws| ws.iter().find(|(w, _)| rest.starts_with(w)))
        {
            readings.iter().for_each(|r| piece(Piece::Syllable(r)));
            rest = &rest[word.len()..];
            continue;
        }
        if c.is_ascii_alphanumeric() {
            piece(Piece::Latin(c.to_ascii_lowercase()));
        } else if let Some(&(_, reading)) = CHARACTERS.iter().find(|(ch, _)| *ch == c) {
            piece(Piece::Syllable(reading));
        } else if let Some(p) = c.to_pinyin() {
            piece(Piece::Syllable(p.plain()));
        }
        rest = &rest[c.len_utf8()..];
    }
}

/// Appends a plain reading as ASCII: ü is typed v, ê is e.
fn push_ascii(out: &mut String, reading: &str) {
    for c in reading.chars() {
        match c {
            'ü' => out.push('v'),
            'ê' => out.push('e'),
            c if c.is_ascii_alphabetic() => out.push(c),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn company_names() {
        assert_eq!(pinyin_full("华润燃气"), "huarunranqi");
        assert_eq!(pinyin_initials("华润燃气"), "hrrq");
        assert_eq!(pinyin_full("重庆燃气"), "chongqingranqi");
        assert_eq!(pinyin_initials("重庆燃气"), "cqrq");
        assert_eq!(pinyin_full("杭州华润燃气有限公司"), "hangzhouhuarunranqiyouxiangongsi");
        assert_eq!(pinyin_initials("杭州华润燃气有限公司"), "hzhrrqyxgs");
        assert_eq!(pinyin_full("abc物流"), "abcwuliu");
        assert_eq!(pinyin_initials("abc物流 3号"), "abcwl3h");
        assert_eq!(pinyin_full("绿地集团"), "lvdijituan");
    }

    #[test]
    fn polyphonic_words_in_names() {
        for (word, full) in [
            ("重庆", "chongqing"),
            ("长沙", "changsha"),
            ("长春", "changchun"),
            ("厦门", "xiamen"),
            ("银行", "yinhang"),
            ("行业", "hangye"),
            ("蚌埠", "bengbu"),
            ("乐山", "leshan"),
            ("六安", "luan"),
            ("丽水", "lishui"),
            ("单县", "shanxian"),
            ("朝阳", "chaoyang"),
            ("长安", "changan"),
            ("音乐", "yinyue"),
            ("重工", "zhonggong"),
            ("成都", "chengdu"),
            ("招商银行杭州分行", "zhaoshangyinhanghangzhoufenhang"),
            ("行长", "hangzhang"),
            ("成长", "chengzhang"),
        ] {
            assert_eq!(pinyin_full(word), full, "{word}");
        }
        assert_eq!(pinyin_initials("长江重工"), "cjzg");
    }

    #[test]
    fn typed_pinyin_shares_terms_with_the_name() {
        let stored = pinyin_terms("杭州华润燃气有限公司");
        assert!(stored.contains(&"py:hua run".to_string()) && stored.contains(&"pi:hrr".to_string()));
        for typed in ["huarun", "HuaRun", "huarunranqi", "huarunra", "hrrq", "hzhr", "hua run"] {
            let terms = pinyin_query_terms(typed);
            assert!(terms.iter().any(|t| stored.contains(t)), "{typed}: {terms:?}");
        }
        // Xi'an is two syllables however it is typed.
        let xian = pinyin_terms("西安燃气");
        for typed in ["xian", "xi'an"] {
            assert!(pinyin_query_terms(typed).iter().any(|t| xian.contains(t)), "{typed}");
        }
        assert!(pinyin_query_terms("华润").is_empty());
        assert!(pinyin_query_terms("a").is_empty());
        assert!(pinyin_terms("ABC").is_empty());
    }

    #[test]
    fn persons() {
        assert_eq!(pinyin_full("张伟"), "zhangwei");
        assert_eq!(pinyin_full("欧阳娜娜"), "ouyangnana");
        assert_eq!(pinyin_initials("欧阳娜娜"), "oynn");
        assert_eq!(pinyin_full("曾小明"), "zengxiaoming");
    }

    proptest! {
        #[test]
        fn output_is_lower_ascii_and_initials_are_no_longer(s in "\\PC{0,60}") {
            let full = pinyin_full(&s);
            let initials = pinyin_initials(&s);
            prop_assert!(full.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
            prop_assert!(initials.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
            prop_assert!(initials.len() <= full.len());
        }

        #[test]
        fn latin_passes_through(s in "[a-z0-9]{0,30}") {
            prop_assert_eq!(pinyin_full(&s), s.clone());
            prop_assert_eq!(pinyin_initials(&s), s);
        }
    }
}

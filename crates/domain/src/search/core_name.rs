//! The distinctive core of a customer's name for duplicate detection (CUS-2):
//! 杭州华润燃气有限公司, 华润燃气(杭州)有限公司 and 浙江省杭州市华润燃气股份有限公司
//! are all 华润燃气.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::{places, romanize::pinyin_full};

/// Legal forms and branch markers at the end of a Chinese name, each before
/// any shorter one it ends with (有限公司 before 公司). 集团 and 控股 go too:
/// 北京燃气集团 and 北京燃气有限公司 are worth a second look as duplicates
/// (a group and its operating company in one region), and a missed duplicate
/// costs more than a question the clerk answers with "not the same".
const CJK_SUFFIXES: &[&str] = &[
    "股份有限公司",
    "有限责任公司",
    "合伙企业",
    "股份公司",
    "有限公司",
    "集团公司",
    "经营部",
    "门市部",
    "营业部",
    "事务所",
    "办事处",
    "分公司",
    "总公司",
    "子公司",
    "公司",
    "集团",
    "控股",
    "总厂",
    "分厂",
    "商行",
    "分行",
    "支行",
    "分店",
    "分部",
    "厂",
];

/// Legal forms ending a Latin name, as whole words.
const LATIN_SUFFIXES: &[&str] = &[
    "co",
    "company",
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "llc",
    "llp",
    "plc",
    "gmbh",
    "ag",
    "bv",
    "nv",
    "sa",
    "pte",
    "pty",
    "group",
    "holding",
    "holdings",
];

/// What may stand in parentheses and is dropped besides a place name.
const PARENTHESISED: &[&str] = &["集团", "控股", "中国", "有限合伙", "普通合伙", "特殊普通合伙", "china", "hk"];

/// Place names in pinyin (`(shanghai)`, `(hong kong)` with the space removed).
static LATIN_PLACES: LazyLock<HashSet<String>> = LazyLock::new(|| {
    places::all()
        .filter(|p| p.chars().count() <= 3)
        .map(pinyin_full)
        .chain(["hongkong".into(), "macau".into()])
        .collect()
});

/// Separators trimmed off both ends after each step.
const SEPARATORS: &[char] = &[' ', '.', ',', ';', ':', '&', '-', '_', '/', '·', '、'];

/// Branch markers: a branch's name is its company's name plus where and
/// what the branch is (`中国石油天然气股份有限公司杭州销售分公司`), so
/// everything after the company's legal form goes with the marker.
const BRANCH_SUFFIXES: &[&str] = &["分公司", "分行", "支行", "营业部", "办事处", "分店", "分部", "分厂"];

/// What is left of a name after its place that says only what kind of body
/// it is. Then the place is the name (宁波银行, 浙江大学, 北京燃气), so it is
/// kept, in its short form so that 北京市燃气集团有限公司 and 北京燃气集团 agree.
const GENERIC: &[&str] = &[
    "燃气",
    "天然气",
    "自来水",
    "供水",
    "水务",
    "电力",
    "供电",
    "热力",
    "公交",
    "地铁",
    "轨道交通",
    "机场",
    "港务",
    "航空",
    "银行",
    "农商银行",
    "农村商业银行",
    "商业银行",
    "信用社",
    "农村信用社",
    "证券",
    "保险",
    "大学",
    "学院",
    "中学",
    "小学",
    "医院",
    "人民医院",
    "中医院",
    "人民政府",
    "政府",
    "市政府",
    "日报",
    "晚报",
    "电视台",
    "广播电视台",
    "啤酒",
    "烟草",
    "邮政",
    "电信",
    "移动",
    "联通",
    "城投",
    "交投",
    "建工",
    "城建",
];

/// The distinctive part of a normalised company or person name: a leading
/// province, city and district, parenthesised places, and trailing legal
/// forms and branch markers are removed, repeatedly
/// (`杭州华润燃气有限公司杭州分公司` → `华润燃气`).
///
/// A place is stripped only when at least two characters remain after it, so
/// person names that start with a city's name (金华强, 吉林) keep it; a
/// trailing place only once a legal form or branch marker has gone
/// (`华润燃气杭州有限公司`), never from a person's name. A place followed only
/// by a generic word stays, in short form (`北京市燃气集团有限公司` →
/// `北京燃气`). Never empty for a non-empty input: when nothing would be
/// left, the input is returned as it is (`杭州` → `杭州`).
pub fn name_core(name: &str) -> String {
    let without_parens = drop_parenthesised(name);
    let mut s = without_parens.as_deref().unwrap_or(name).trim_matches(SEPARATORS);
    let mut organisation = false;
    loop {
        let before = s.len();
        // All legal forms first, so that what follows a place is seen whole.
        while let Some(rest) = strip_legal_suffix(s) {
            s = rest.trim_matches(SEPARATORS);
            organisation = true;
        }
        if organisation && let Some(start) = places::trailing(s, 2) {
            s = s[..start].trim_matches(SEPARATORS);
        }
        if let Some(end) = places::leading(s, 2) {
            let rest = strip_districts(&s[end..]).trim_matches(SEPARATORS);
            if GENERIC.contains(&rest) {
                let place = places::short_form(&s[..end]).unwrap_or(&s[..end]);
                return format!("{place}{rest}");
            }
            s = rest;
        }
        if s.len() == before {
            break;
        }
    }
    if s.is_empty() { name.to_string() } else { s.to_string() }
}

fn strip_legal_suffix(s: &str) -> Option<&str> {
    if let Some((suffix, rest)) = CJK_SUFFIXES.iter().find_map(|suffix| Some((*suffix, s.strip_suffix(suffix)?))) {
        if rest.trim_matches(SEPARATORS).is_empty() {
            return None;
        }
        let company = BRANCH_SUFFIXES.contains(&suffix).then(|| rest.rfind("公司")).flatten();
        return Some(match company {
            Some(i) if i > 0 => &rest[..i + "公司".len()],
            _ => rest,
        });
    }
    let start =
        s.rfind(|c: char| !c.is_alphanumeric()).map_or(0, |i| i + s[i..].chars().next().map_or(1, char::len_utf8));
    let (rest, word) = s.split_at(start);
    let rest_ok = !rest.trim_matches(SEPARATORS).is_empty();
    (rest_ok && LATIN_SUFFIXES.contains(&word)).then_some(rest)
}

/// After a city, its district, county or development zone: 西湖区, 桐庐县,
/// 浦东新区, 工业园区, 经济技术开发区 (3 to 7 characters ending in 区, 县 or
/// 旗), up to three of them, each leaving at least two characters.
fn strip_districts(mut s: &str) -> &str {
    for _ in 0..3 {
        let Some(end) = district_end(s) else { break };
        s = &s[end..];
    }
    s
}

fn district_end(s: &str) -> Option<usize> {
    let mut chars = s.char_indices().take(7).enumerate().peekable();
    while let Some((n, (i, c))) = chars.next() {
        if !super::is_cjk(c) {
            return None;
        }
        // 区域, 区块链, 区间 and 区别 are words, not districts.
        let glued = matches!(chars.peek(), Some((_, (_, '域' | '块' | '间' | '别'))));
        if n >= 2 && matches!(c, '区' | '县' | '旗') && !glued {
            let end = i + c.len_utf8();
            return (s[end..].chars().count() >= 2).then_some(end);
        }
    }
    None
}

/// The name without parenthesised places and markers (`华润燃气(杭州)有限公司`),
/// or None when there is nothing to drop. Full-width parentheses are already
/// ASCII after `width_fold`.
fn drop_parenthesised(name: &str) -> Option<String> {
    if !name.contains('(') {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    let mut dropped = false;
    while let Some(open) = rest.find('(') {
        let Some(close) = rest[open..].find(')').map(|c| open + c) else { break };
        let inner = rest[open + 1..close].trim();
        out.push_str(&rest[..open]);
        if droppable(inner) {
            dropped = true;
        } else {
            out.push_str(&rest[open..=close]);
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    dropped.then(|| out.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn droppable(inner: &str) -> bool {
    places::is_place(inner)
        || PARENTHESISED.contains(&inner)
        || (inner.is_ascii() && !inner.is_empty() && LATIN_PLACES.contains(&inner.replace(' ', "")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize_for_match;
    use proptest::prelude::*;

    fn core(s: &str) -> String {
        name_core(&normalize_for_match(s))
    }

    #[test]
    fn companies_lose_place_and_legal_form() {
        for (name, want) in [
            ("杭州华润燃气有限公司", "华润燃气"),
            ("华润燃气(杭州)有限公司", "华润燃气"),
            ("华润燃气（杭州）有限公司", "华润燃气"),
            ("浙江省杭州市华润燃气股份有限公司", "华润燃气"),
            ("杭州华润燃气有限公司杭州分公司", "华润燃气"),
            ("华润燃气杭州有限公司", "华润燃气"),
            ("深圳市万科物业服务有限公司", "万科物业服务"),
            ("苏州工业园区清源华衍水务有限公司", "清源华衍水务"),
            ("杭州市西湖区龙井茶业经营部", "龙井茶业"),
            ("上海市浦东新区张江高科技园区某某软件有限公司", "某某软件"),
            ("内蒙古自治区伊利实业集团股份有限公司", "伊利实业"),
            ("新疆维吾尔自治区天山水泥厂", "天山水泥"),
            ("香港华润(集团)有限公司", "华润"),
            ("北京燃气集团", "北京燃气"),
            ("北京市燃气集团有限公司", "北京燃气"),
            ("浙江省杭州市燃气集团", "杭州燃气"),
            ("上海自来水公司", "上海自来水"),
            ("宁波银行股份有限公司", "宁波银行"),
            ("浙江大学", "浙江大学"),
            ("北京市朝阳区人民政府", "北京人民政府"),
            ("杭州市政府", "杭州市政府"),
            ("中国石油天然气股份有限公司杭州销售分公司", "中国石油天然气"),
            ("中国银行股份有限公司浙江省分行", "中国银行"),
            ("招商银行杭州分行", "招商银行"),
            ("杭州市场营销策划有限公司", "市场营销策划"),
            ("广东省普宁市某某商行", "某某"),
            ("abc logistics co., ltd.", "abc logistics"),
            ("ABC Logistics (Shanghai) Co., Ltd.", "abc logistics"),
            ("Siemens AG", "siemens"),
            ("abc group holdings limited", "abc"),
        ] {
            assert_eq!(core(name), want, "{name}");
        }
    }

    #[test]
    fn persons_and_bare_places_are_kept() {
        for name in ["张三", "张伟", "欧阳娜娜", "金华强", "李长春", "杭州", "杭州市", "有限公司", "zhang san"]
        {
            assert_eq!(core(name), normalize_for_match(name), "{name}");
        }
    }

    #[test]
    fn words_that_start_like_places_are_not_places() {
        assert_eq!(core("三明治工坊有限公司"), "三明治工坊");
        assert_eq!(core("北海道拉面馆"), "北海道拉面馆");
        assert_eq!(core("东方航空"), "东方航空");
        assert_eq!(core("杭州区块链科技有限公司"), "区块链科技");
        assert_eq!(core("华润燃气(研发中心)"), "华润燃气(研发中心)");
    }

    proptest! {
        #[test]
        fn never_empty_and_idempotent(s in "\\PC{0,60}") {
            let n = normalize_for_match(&s);
            let c = name_core(&n);
            prop_assert_eq!(c.is_empty(), n.is_empty());
            prop_assert_eq!(name_core(&c), c);
        }

        #[test]
        fn idempotent_on_built_names(
            place in prop::sample::select(vec!["", "杭州", "浙江省杭州市", "北京", "(杭州)", "深圳市南山区"]),
            brand in "[华润燃气万科物业清源水务张伟银行大学]{1,5}",
            legal in prop::sample::select(vec!["", "有限公司", "股份有限公司", "集团", "有限公司杭州分公司", "厂", " co., ltd."]),
        ) {
            let c = name_core(&format!("{place}{brand}{legal}"));
            prop_assert_eq!(name_core(&c), c.clone());
        }
    }
}

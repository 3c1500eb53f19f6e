//! Chinese place names that open (or, after a branch marker, close) company
//! names: the 34 provincial-level divisions, the prefecture-level divisions and
//! the better-known county-level cities, in full and short form.
//!
//! Lookup is a hash set probed with each prefix (or suffix) length from the
//! longest name down to two characters, so a name costs at most a handful of
//! probes. Short forms that are also common words or brands (东方, 永安, 阿里,
//! 大理 as in 大理石 marble) are listed only with their administrative suffix.

use std::collections::HashMap;
use std::sync::LazyLock;

/// Provincial-level divisions: full name and short forms.
const PROVINCES: &[(&str, &str)] = &[
    ("北京市", "北京"),
    ("天津市", "天津"),
    ("上海市", "上海"),
    ("重庆市", "重庆"),
    ("河北省", "河北"),
    ("山西省", "山西"),
    ("辽宁省", "辽宁"),
    ("吉林省", "吉林"),
    ("黑龙江省", "黑龙江"),
    ("江苏省", "江苏"),
    ("浙江省", "浙江"),
    ("安徽省", "安徽"),
    ("福建省", "福建"),
    ("江西省", "江西"),
    ("山东省", "山东"),
    ("河南省", "河南"),
    ("湖北省", "湖北"),
    ("湖南省", "湖南"),
    ("广东省", "广东"),
    ("海南省", "海南"),
    ("四川省", "四川"),
    ("贵州省", "贵州"),
    ("云南省", "云南"),
    ("陕西省", "陕西"),
    ("甘肃省", "甘肃"),
    ("青海省", "青海"),
    ("台湾省", "台湾"),
    ("内蒙古自治区", "内蒙古"),
    ("广西壮族自治区", "广西 广西自治区"),
    ("西藏自治区", "西藏"),
    ("宁夏回族自治区", "宁夏 宁夏自治区"),
    ("新疆维吾尔自治区", "新疆 新疆自治区"),
    ("香港特别行政区", "香港"),
    ("澳门特别行政区", "澳门"),
];

/// Prefecture-level cities, without 市 (both forms are looked up).
const PREFECTURE_CITIES: &str = "\
    石家庄 唐山 秦皇岛 邯郸 邢台 保定 张家口 承德 沧州 廊坊 衡水 \
    太原 大同 阳泉 长治 晋城 朔州 晋中 运城 忻州 临汾 吕梁 \
    呼和浩特 包头 乌海 赤峰 通辽 鄂尔多斯 呼伦贝尔 巴彦淖尔 乌兰察布 \
    沈阳 大连 鞍山 抚顺 本溪 丹东 锦州 营口 阜新 辽阳 盘锦 铁岭 朝阳 葫芦岛 \
    长春 吉林 四平 辽源 通化 白山 松原 白城 \
    哈尔滨 齐齐哈尔 鸡西 鹤岗 双鸭山 大庆 伊春 佳木斯 七台河 牡丹江 黑河 绥化 \
    南京 无锡 徐州 常州 苏州 南通 连云港 淮安 盐城 扬州 镇江 泰州 宿迁 \
    杭州 宁波 温州 嘉兴 湖州 绍兴 金华 衢州 舟山 台州 丽水 \
    合肥 芜湖 蚌埠 淮南 马鞍山 淮北 铜陵 安庆 黄山 滁州 阜阳 宿州 六安 亳州 池州 宣城 \
    福州 厦门 莆田 三明 泉州 漳州 南平 龙岩 宁德 \
    南昌 景德镇 萍乡 九江 新余 鹰潭 赣州 吉安 宜春 抚州 上饶 \
    济南 青岛 淄博 枣庄 东营 烟台 潍坊 济宁 泰安 威海 日照 临沂 德州 聊城 滨州 菏泽 \
    郑州 开封 洛阳 平顶山 安阳 鹤壁 新乡 焦作 濮阳 许昌 漯河 三门峡 南阳 商丘 信阳 周口 驻马店 \
    武汉 黄石 十堰 宜昌 襄阳 鄂州 荆门 孝感 荆州 黄冈 咸宁 随州 \
    长沙 株洲 湘潭 衡阳 邵阳 岳阳 常德 张家界 益阳 郴州 永州 怀化 娄底 \
    广州 韶关 深圳 珠海 汕头 佛山 江门 湛江 茂名 肇庆 惠州 梅州 汕尾 河源 阳江 清远 东莞 中山 潮州 揭阳 云浮 \
    南宁 柳州 桂林 梧州 北海 防城港 钦州 贵港 玉林 百色 贺州 河池 来宾 崇左 \
    海口 三亚 三沙 儋州 \
    成都 自贡 攀枝花 泸州 德阳 绵阳 广元 遂宁 内江 乐山 南充 眉山 宜宾 广安 达州 雅安 巴中 资阳 \
    贵阳 六盘水 遵义 安顺 毕节 铜仁 \
    昆明 曲靖 玉溪 保山 昭通 丽江 普洱 临沧 \
    拉萨 日喀则 昌都 林芝 山南 那曲 \
    西安 铜川 宝鸡 咸阳 渭南 延安 汉中 榆林 安康 商洛 \
    兰州 嘉峪关 金昌 白银 天水 武威 张掖 平凉 酒泉 庆阳 定西 陇南 \
    西宁 海东 \
    银川 石嘴山 吴忠 固原 中卫 \
    乌鲁木齐 克拉玛依 吐鲁番 哈密 \
    台北 新北 台中 台南 高雄 基隆 新竹 嘉义";

/// Autonomous prefectures, prefectures (地区) and leagues (盟): full name and
/// the short forms in common use.
const PREFECTURES: &[(&str, &str)] = &[
    ("兴安盟", ""),
    ("锡林郭勒盟", "锡林郭勒"),
    ("阿拉善盟", "阿拉善"),
    ("延边朝鲜族自治州", "延边 延边州"),
    ("大兴安岭地区", "大兴安岭"),
    ("恩施土家族苗族自治州", "恩施 恩施州"),
    ("湘西土家族苗族自治州", "湘西 湘西州"),
    ("阿坝藏族羌族自治州", "阿坝 阿坝州"),
    ("甘孜藏族自治州", "甘孜 甘孜州"),
    ("凉山彝族自治州", "凉山 凉山州"),
    ("黔西南布依族苗族自治州", "黔西南 黔西南州"),
    ("黔东南苗族侗族自治州", "黔东南 黔东南州"),
    ("黔南布依族苗族自治州", "黔南 黔南州"),
    ("楚雄彝族自治州", "楚雄 楚雄州"),
    ("红河哈尼族彝族自治州", "红河州"),
    ("文山壮族苗族自治州", "文山州"),
    ("西双版纳傣族自治州", "西双版纳 西双版纳州"),
    ("大理白族自治州", "大理州"),
    ("德宏傣族景颇族自治州", "德宏 德宏州"),
    ("怒江傈僳族自治州", "怒江州"),
    ("迪庆藏族自治州", "迪庆 迪庆州"),
    ("阿里地区", ""),
    ("临夏回族自治州", "临夏 临夏州"),
    ("甘南藏族自治州", "甘南 甘南州"),
    ("海北藏族自治州", "海北州"),
    ("黄南藏族自治州", "黄南州"),
    ("海南藏族自治州", "海南州"),
    ("果洛藏族自治州", "果洛 果洛州"),
    ("玉树藏族自治州", "玉树州"),
    ("海西蒙古族藏族自治州", "海西州"),
    ("昌吉回族自治州", "昌吉 昌吉州"),
    ("博尔塔拉蒙古自治州", "博尔塔拉 博州"),
    ("巴音郭楞蒙古自治州", "巴音郭楞 巴州"),
    ("克孜勒苏柯尔克孜自治州", "克孜勒苏 克州"),
    ("伊犁哈萨克自治州", "伊犁 伊犁州"),
    ("阿克苏地区", "阿克苏"),
    ("喀什地区", "喀什"),
    ("和田地区", "和田"),
    ("塔城地区", "塔城"),
    ("阿勒泰地区", "阿勒泰"),
];

/// County-level cities whose short name is not also a common word, without 市.
const COUNTY_CITIES: &str = "\
    定州 辛集 涿州 三河 霸州 任丘 迁安 遵化 武安 晋州 高碑店 \
    古交 介休 永济 河津 原平 侯马 霍州 孝义 汾阳 \
    满洲里 二连浩特 霍林郭勒 扎兰屯 牙克石 额尔古纳 乌兰浩特 阿尔山 锡林浩特 \
    瓦房店 庄河 海城 凤城 凌海 盖州 大石桥 调兵山 开原 北票 凌源 兴城 \
    德惠 蛟河 桦甸 舒兰 公主岭 双辽 梅河口 集安 扶余 洮南 延吉 图们 敦化 珲春 和龙 \
    五常 讷河 虎林 密山 同江 富锦 抚远 绥芬河 海林 宁安 穆棱 东宁 北安 五大连池 肇东 漠河 \
    昆山 江阴 张家港 常熟 太仓 宜兴 溧阳 丹阳 扬中 句容 靖江 泰兴 兴化 如皋 启东 邳州 新沂 东台 高邮 仪征 \
    义乌 慈溪 余姚 诸暨 海宁 桐乡 平湖 温岭 临海 乐清 瑞安 东阳 永康 兰溪 嵊州 建德 玉环 \
    巢湖 桐城 界首 宁国 潜山 \
    晋江 石狮 南安 福清 邵武 武夷山 漳平 福安 福鼎 \
    瑞金 井冈山 丰城 贵溪 乐平 瑞昌 共青城 \
    龙口 莱阳 莱州 招远 海阳 胶州 平度 莱西 寿光 诸城 青州 昌邑 安丘 曲阜 邹城 滕州 荣成 乳山 新泰 肥城 乐陵 禹城 临清 邹平 \
    济源 巩义 新郑 登封 荥阳 新密 禹州 长葛 永城 项城 汝州 林州 邓州 义马 灵宝 \
    仙桃 潜江 天门 宜都 枝江 当阳 汉川 应城 安陆 大冶 丹江口 老河口 枣阳 宜城 钟祥 松滋 洪湖 石首 麻城 武穴 赤壁 广水 利川 \
    浏阳 宁乡 醴陵 湘乡 韶山 耒阳 常宁 汨罗 临湘 沅江 资兴 冷水江 涟源 吉首 \
    台山 开平 鹤山 恩平 四会 英德 连州 普宁 雷州 廉江 吴川 高州 化州 信宜 罗定 兴宁 陆丰 乐昌 南雄 \
    岑溪 桂平 北流 凭祥 靖西 荔浦 横州 \
    五指山 琼海 文昌 万宁 \
    都江堰 彭州 邛崃 崇州 简阳 广汉 什邡 绵竹 江油 峨眉山 阆中 华蓥 万源 西昌 康定 马尔康 隆昌 射洪 \
    清镇 赤水 仁怀 凯里 都匀 兴义 \
    个旧 蒙自 芒市 景洪 宣威 腾冲 \
    韩城 华阴 神木 彬州 \
    临夏 楚雄 昌吉 阿克苏 喀什 和田 塔城 阿勒泰 \
    玉门 敦煌 \
    格尔木 德令哈 \
    灵武 青铜峡 \
    石河子 阿拉尔 图木舒克 五家渠 库尔勒 伊宁 奎屯 霍尔果斯 博乐 阿拉山口 阜康 乌苏 库车 阿图什";

/// Cities looked up only as `X市`: their bare name is also a common word or a
/// brand (东方航空, 永安保险, 大理石, 香格里拉酒店, 同仁堂).
const CITIES_WITH_SUFFIX_ONLY: &str = "\
    东方 永安 江山 合作 安宁 新民 灯塔 长乐 临江 龙井 天长 明光 无为 广德 樟树 德兴 高平 怀仁 兴平 \
    东兴 安达 海伦 铁力 东港 北镇 根河 丰镇 合山 大安 同仁 大理 香格里拉 开远 福泉 高安 庐山 \
    玉树 文山 北屯 双河 新星 白杨 昆玉 胡杨河 可克达拉 铁门关 \
    阳春 弥勒 瑞丽 高密 榆树 磐石 尚志 桃园";

/// Words that begin with a place name but do not name the place.
const NOT_PLACES: &[&str] = &["三明治", "北海道", "德州扑克", "长治久安", "中山装", "吉林大学", "长春藤"];

struct PlaceIndex {
    /// Every name in every form, to its short form (浙江省 → 浙江, 杭州市 →
    /// 杭州, 广西壮族自治区 → 广西; a suffix-only city keeps its 市).
    names: HashMap<String, String>,
    /// For each character that begins (ends) a place name, the lengths in
    /// characters of those names as bits, so most characters of a company
    /// name cost one probe and the rest only the lengths that exist.
    lengths_by_first: HashMap<char, u32>,
    lengths_by_last: HashMap<char, u32>,
}

/// Place names are shorter than this many characters (a bit of a `u32`).
const MAX_CHARS: usize = 32;

static INDEX: LazyLock<PlaceIndex> = LazyLock::new(|| {
    let mut names = HashMap::new();
    for (full, shorts) in PROVINCES.iter().chain(PREFECTURES) {
        let short = shorts.split_whitespace().next().unwrap_or(full);
        for name in shorts.split_whitespace().chain([*full]) {
            names.insert(name.to_string(), short.to_string());
        }
    }
    for city in PREFECTURE_CITIES.split_whitespace().chain(COUNTY_CITIES.split_whitespace()) {
        names.entry(city.to_string()).or_insert_with(|| city.to_string());
        names.entry(format!("{city}市")).or_insert_with(|| city.to_string());
    }
    for city in CITIES_WITH_SUFFIX_ONLY.split_whitespace() {
        names.insert(format!("{city}市"), format!("{city}市"));
    }
    let (mut lengths_by_first, mut lengths_by_last) = (HashMap::new(), HashMap::new());
    for name in names.keys() {
        let len = name.chars().count();
        if let (Some(first), Some(last), true) = (name.chars().next(), name.chars().next_back(), len < MAX_CHARS) {
            *lengths_by_first.entry(first).or_insert(0) |= 1 << len;
            *lengths_by_last.entry(last).or_insert(0) |= 1 << len;
        }
    }
    PlaceIndex { names, lengths_by_first, lengths_by_last }
});

/// Two-character words made of a place name's last character and the one
/// after it: `杭州市场` is 杭州 + 市场, not 杭州市 + 场.
const GLUED: &[&str] = &["市场", "市政", "市民", "市区", "市容", "市值", "市级", "省级", "省委", "州立"];

/// Whether `s` is exactly a known place name.
pub(crate) fn is_place(s: &str) -> bool {
    INDEX.names.contains_key(s)
}

/// The short form of a known place name: 浙江省 → 浙江, 杭州市 → 杭州,
/// 广西壮族自治区 → 广西; None for anything else.
pub(crate) fn short_form(place: &str) -> Option<&'static str> {
    INDEX.names.get(place).map(String::as_str)
}

/// All known place names, for building derived tables (their pinyin).
pub(crate) fn all() -> impl Iterator<Item = &'static str> {
    INDEX.names.keys().map(String::as_str)
}

/// Byte length of the longest place name that `s` starts with and that
/// leaves at least `min_rest` characters after it.
pub(crate) fn leading(s: &str, min_rest: usize) -> Option<usize> {
    let lengths = *INDEX.lengths_by_first.get(&s.chars().next()?)?;
    if NOT_PLACES.iter().any(|w| s.starts_with(w)) {
        return None;
    }
    // ends[n] is the byte offset after the first n characters.
    let mut ends = [0usize; MAX_CHARS];
    let mut chars = 0;
    for (i, c) in s.char_indices().take(MAX_CHARS - 1) {
        chars += 1;
        ends[chars] = i + c.len_utf8();
    }
    let total = chars + s[ends[chars]..].chars().count();
    (2..=chars).rev().filter(|&n| lengths & (1 << n) != 0 && total - n >= min_rest).map(|n| ends[n]).find(|&end| {
        let (place, rest) = s.split_at(end);
        is_place(place) && !glued(place, rest)
    })
}

/// Byte offset where the longest place name that `s` ends with begins,
/// leaving at least `min_rest` characters before it.
pub(crate) fn trailing(s: &str, min_rest: usize) -> Option<usize> {
    let lengths = *INDEX.lengths_by_last.get(&s.chars().next_back()?)?;
    // starts[n] is the byte offset of the last n characters.
    let mut starts = [0usize; MAX_CHARS];
    let mut chars = 0;
    for (i, _) in s.char_indices().rev().take(MAX_CHARS - 1) {
        chars += 1;
        starts[chars] = i;
    }
    let total = chars + s[..starts[chars]].chars().count();
    (2..=chars)
        .rev()
        .filter(|&n| lengths & (1 << n) != 0 && total - n >= min_rest)
        .map(|n| starts[n])
        .find(|&start| is_place(&s[start..]))
}

fn glued(place: &str, rest: &str) -> bool {
    let (Some(last), Some(next)) = (place.chars().next_back(), rest.chars().next()) else {
        return false;
    };
    GLUED.iter().any(|w| {
        let mut cs = w.chars();
        cs.next() == Some(last) && cs.next() == Some(next)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_province_in_both_forms() {
        assert_eq!(PROVINCES.len(), 34);
        assert!(INDEX.names.keys().all(|n| n.chars().count() < MAX_CHARS));
        for p in
            ["广东省", "广东", "内蒙古自治区", "内蒙古", "广西壮族自治区", "广西", "新疆维吾尔自治区", "新疆", "香港"]
        {
            assert!(is_place(p), "{p}");
        }
    }

    #[test]
    fn prefecture_level_divisions_are_all_there() {
        let cities = PREFECTURE_CITIES.split_whitespace().count();
        // 293 prefecture-level cities (plus Taiwan's nine) and 40 other
        // prefecture-level divisions, less the places listed twice.
        assert!(cities >= 290, "{cities}");
        assert_eq!(PREFECTURES.len(), 40);
        for c in ["杭州", "杭州市", "六安市", "延边州", "阿克苏", "义乌市", "东方市"] {
            assert!(is_place(c), "{c}");
        }
        for w in ["东方", "阿里", "大理", "燃气", "华润", "市场"] {
            assert!(!is_place(w), "{w}");
        }
    }

    #[test]
    fn no_name_is_listed_twice_within_a_list() {
        let mut seen = std::collections::HashSet::new();
        for c in PREFECTURE_CITIES.split_whitespace().chain(COUNTY_CITIES.split_whitespace()) {
            assert!(seen.insert(c), "{c} listed twice");
        }
        for c in CITIES_WITH_SUFFIX_ONLY.split_whitespace() {
            assert!(!seen.contains(c), "{c} is both a bare and a suffix-only name");
        }
    }

    #[test]
    fn leading_prefers_the_longest_name_that_leaves_enough() {
        assert_eq!(leading("杭州市华润燃气", 2), Some("杭州市".len()));
        assert_eq!(leading("杭州华润燃气", 2), Some("杭州".len()));
        assert_eq!(leading("杭州市", 2), None);
        assert_eq!(leading("杭州市场营销", 2), Some("杭州".len()));
        assert_eq!(leading("三明治店铺", 2), None);
        assert_eq!(leading("华润燃气", 0), None);
        assert_eq!(trailing("华润燃气杭州", 2), Some("华润燃气".len()));
        assert_eq!(trailing("燃气杭州市", 3), None);
        assert_eq!(short_form("浙江省"), Some("浙江"));
        assert_eq!(short_form("杭州市"), Some("杭州"));
        assert_eq!(short_form("新疆维吾尔自治区"), Some("新疆"));
        assert_eq!(short_form("延边州"), Some("延边"));
        assert_eq!(short_form("兴安盟"), Some("兴安盟"));
        assert_eq!(short_form("东方市"), Some("东方市"));
        assert_eq!(short_form("华润"), None);
    }
}

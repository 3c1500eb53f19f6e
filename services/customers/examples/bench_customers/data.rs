//! A customer book of realistic shape for a Chinese utility: companies named
//! city + brand + trade + legal form (in the usual variants: 杭州市…,
//! 浙江省杭州市…, …(杭州)有限公司, branches), some people, landlines with
//! their city's area code, mobiles, contacts with emails, addresses. Brands
//! are drawn unevenly, so some name parts are common and some rare, as in a
//! real book. Deterministic for a given seed.

use crm_proto::customers::v1 as pb;

/// splitmix64: small, fast, good enough to draw test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Skewed towards small indices (roughly Zipf-like), for brand popularity.
    pub fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) - 1.0).floor().clamp(0.0, (n - 1) as f64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}

/// (city, province, region code, area code, branch)
pub const CITIES: &[(&str, &str, &str, &str, &str)] = &[
    ("杭州", "浙江", "CN-ZJ", "0571", "hz"),
    ("宁波", "浙江", "CN-ZJ", "0574", "nb"),
    ("温州", "浙江", "CN-ZJ", "0577", "wz"),
    ("绍兴", "浙江", "CN-ZJ", "0575", "sx"),
    ("嘉兴", "浙江", "CN-ZJ", "0573", "jx"),
    ("苏州", "江苏", "CN-JS", "0512", "su"),
    ("南京", "江苏", "CN-JS", "025", "nj"),
    ("无锡", "江苏", "CN-JS", "0510", "wx"),
    ("常州", "江苏", "CN-JS", "0519", "cz"),
    ("深圳", "广东", "CN-GD", "0755", "sz"),
    ("广州", "广东", "CN-GD", "020", "gz"),
    ("东莞", "广东", "CN-GD", "0769", "dg"),
    ("佛山", "广东", "CN-GD", "0757", "fs"),
    ("北京", "", "CN-BJ", "010", "bj"),
    ("上海", "", "CN-SH", "021", "sh"),
    ("天津", "", "CN-TJ", "022", "tj"),
    ("重庆", "", "CN-CQ", "023", "cq"),
    ("成都", "四川", "CN-SC", "028", "cd"),
    ("武汉", "湖北", "CN-HB", "027", "wh"),
    ("西安", "陕西", "CN-SN", "029", "xa"),
    ("长沙", "湖南", "CN-HN", "0731", "cs"),
    ("郑州", "河南", "CN-HA", "0371", "zz"),
    ("济南", "山东", "CN-SD", "0531", "jn"),
    ("青岛", "山东", "CN-SD", "0532", "qd"),
    ("合肥", "安徽", "CN-AH", "0551", "hf"),
    ("福州", "福建", "CN-FJ", "0591", "fz"),
    ("厦门", "福建", "CN-FJ", "0592", "xm"),
    ("昆明", "云南", "CN-YN", "0871", "km"),
    ("沈阳", "辽宁", "CN-LN", "024", "sy"),
    ("大连", "辽宁", "CN-LN", "0411", "dl"),
];

/// Characters brands are made of; 2-character brands give ~16,000.
const BRAND_CHARS: &[char] = &[
    '华', '润', '新', '奥', '中', '天', '金', '鑫', '宏', '泰', '恒', '达', '通', '源', '盛', '昌', '隆', '兴', '瑞',
    '祥', '安', '康', '信', '诚', '德', '利', '福', '永', '嘉', '佳', '汇', '联', '创', '科', '海', '港', '东', '南',
    '西', '北', '长', '江', '河', '山', '明', '光', '辉', '晨', '星', '宇', '博', '远', '鸿', '腾', '飞', '龙', '凤',
    '鹏', '骏', '峰', '林', '森', '宁', '和', '平', '顺', '丰', '益', '民', '众', '万', '千', '百', '一', '三', '九',
    '富', '贵', '荣', '昊', '睿', '智', '慧', '美', '秀', '锦', '绣', '翔', '捷', '迅', '亿', '万', '正', '大', '宝',
    '蓝', '绿', '青', '红', '紫', '银', '铭', '恩', '豪', '君', '卓', '越', '优', '品', '尚', '雅', '鼎', '立', '坤',
    '乾', '泽', '润', '清',
];

const TRADES: &[&str] = &[
    "燃气",
    "水务",
    "物业服务",
    "电子科技",
    "贸易",
    "物流",
    "建设工程",
    "餐饮管理",
    "机械制造",
    "新材料",
    "信息技术",
    "商贸",
    "热力",
    "供水",
    "房地产开发",
    "化工",
    "纺织",
    "食品",
    "医药",
    "环保科技",
    "汽车服务",
    "能源",
    "电力",
    "通信",
    "酒店管理",
    "农业",
    "家具",
    "服装",
    "印务",
    "实业",
];

const FORMS: &[(&str, u32)] = &[
    ("有限公司", 55),
    ("股份有限公司", 15),
    ("有限责任公司", 10),
    ("集团有限公司", 5),
    ("有限公司{city}分公司", 6),
    ("厂", 4),
    ("商行", 3),
    ("经营部", 2),
];

const SURNAMES: &[(&str, &str)] = &[
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("高", "gao"),
    ("林", "lin"),
    ("罗", "luo"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
    ("唐", "tang"),
    ("许", "xu"),
    ("韩", "han"),
    ("冯", "feng"),
    ("邓", "deng"),
    ("曹", "cao"),
    ("欧阳", "ouyang"),
    ("司马", "sima"),
];

const GIVEN: &[(&str, &str)] = &[
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("艳", "yan"),
    ("杰", "jie"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀英", "xiuying"),
    ("桂英", "guiying"),
    ("建华", "jianhua"),
    ("志强", "zhiqiang"),
];

const MAIL_DOMAINS: &[&str] = &["163.com", "qq.com", "126.com", "sina.com", "aliyun.com"];
const STREETS: &[&str] = &["人民路", "解放路", "中山路", "建设路", "文一路", "延安路", "滨江大道", "科技路", "新华路"];
const DISTRICTS: &[&str] = &["西湖区", "滨江区", "高新区", "经济开发区", "城关区", "新城区", "工业园区"];

/// The brand of index `i` (deterministic).
pub fn brand(i: usize) -> String {
    let n = BRAND_CHARS.len();
    [BRAND_CHARS[i % n], BRAND_CHARS[(i / n + i * 7) % n]].iter().collect()
}

pub const BRANDS: usize = 8_000;

pub fn mobile(r: &mut Rng) -> String {
    let prefix = r.pick(&["138", "139", "136", "137", "150", "151", "158", "186", "187", "189", "177", "199"]);
    format!("{prefix}{}", r.digits(8))
}

pub fn landline(r: &mut Rng, area: &str) -> String {
    // Every city of CITIES has 8-digit numbers, starting with 2 to 8 (7
    // digits survive only in small cities; libphonenumber refuses them here).
    // A few blocks are unassigned in some cities: draw again.
    loop {
        let number = format!("{area}-{}{}", 2 + r.below(7), r.digits(7));
        if crm_domain::Phone::parse(&number).is_ok() {
            return number;
        }
    }
}

/// One row of the book; `n` makes identities unique enough.
pub fn customer(r: &mut Rng, n: usize) -> pb::Customer {
    let &(city, province, region, area, branch) = r.pick(CITIES);
    let owner = format!("s-{branch}-{}", r.below(20));
    let person = r.below(10) == 0;
    let (display_name, legal_name, kind) = if person {
        let (s, _) = r.pick(SURNAMES);
        let (g, _) = r.pick(GIVEN);
        (format!("{s}{g}"), String::new(), pb::PartyKind::Person)
    } else {
        let brand = brand(r.skewed(BRANDS));
        let trade = r.pick(TRADES);
        let mut form = FORMS[0].0;
        let mut pick = r.below(100) as u32;
        for (f, w) in FORMS {
            if pick < *w {
                form = f;
                break;
            }
            pick -= w;
        }
        let form = form.replace("{city}", city);
        let legal = match r.below(10) {
            0 => format!("{brand}{trade}({city}){form}"),
            1 if !province.is_empty() => format!("{province}省{city}市{brand}{trade}{form}"),
            2 | 3 => format!("{city}市{brand}{trade}{form}"),
            _ => format!("{city}{brand}{trade}{form}"),
        };
        let display = if r.below(3) == 0 { format!("{brand}{trade}") } else { legal.clone() };
        (display, legal, pb::PartyKind::Organization)
    };
    let (s, sp) = r.pick(SURNAMES);
    let (g, gp) = r.pick(GIVEN);
    let contact = pb::Contact {
        name: format!("{s}{g}"),
        position: r.pick(&["经理", "采购部经理", "总经理", "财务", "行政主管"]).to_string(),
        phones: vec![mobile(r)],
        email: format!("{sp}.{gp}{}@{}", n % 100_000, r.pick(MAIL_DOMAINS)),
        decision_maker: r.below(3) == 0,
        ..Default::default()
    };
    let phone = if person { mobile(r) } else { landline(r, area) };
    pb::Customer {
        kind: kind as i32,
        display_name,
        legal_name,
        industry: "utilities".into(),
        region: region.into(),
        phone,
        email: if person { String::new() } else { format!("info{}@{}.com.cn", n, branch) },
        owner_id: owner,
        branch: branch.into(),
        contacts: vec![contact],
        addresses: vec![pb::Address {
            kind: pb::AddressKind::HeadOffice as i32,
            province: if province.is_empty() { format!("{city}市") } else { format!("{province}省") },
            city: format!("{city}市"),
            district: r.pick(DISTRICTS).to_string(),
            street: format!("{}{}号", r.pick(STREETS), 1 + r.below(999)),
            postal_code: r.digits(6),
            ..Default::default()
        }],
        ..Default::default()
    }
}

//! Cell values that are not plain text: enum names (English, as in the
//! proto, or Chinese) and collection times.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use crm_proto::customers::v1 as pb;

/// The accepted names of one proto enum: its values without the
/// `PREFIX_`, lower case, and the Chinese words spreadsheets use for them.
pub struct Vocabulary {
    /// What the values are, for messages.
    pub what: &'static str,
    /// The proto prefix, lower case (`party_kind_`): `PARTY_KIND_PERSON` is
    /// accepted too.
    prefix: &'static str,
    values: &'static [(i32, &'static [&'static str])],
}

pub const PARTY_KIND: Vocabulary = Vocabulary {
    what: "kind",
    prefix: "party_kind_",
    values: &[
        (pb::PartyKind::Person as i32, &["person", "个人", "自然人"]),
        (pb::PartyKind::Organization as i32, &["organization", "organisation", "企业", "公司", "单位", "机构", "组织"]),
    ],
};

pub const SIZE_BAND: Vocabulary = Vocabulary {
    what: "size band",
    prefix: "size_band_",
    values: &[
        (pb::SizeBand::Micro as i32, &["micro", "微型"]),
        (pb::SizeBand::Small as i32, &["small", "小型"]),
        (pb::SizeBand::Medium as i32, &["medium", "中型"]),
        (pb::SizeBand::Large as i32, &["large", "大型"]),
    ],
};

pub const SOURCE_CHANNEL: Vocabulary = Vocabulary {
    what: "source channel",
    prefix: "source_channel_",
    values: &[
        (pb::SourceChannel::TradeShow as i32, &["trade_show", "展会"]),
        (pb::SourceChannel::IndustryPress as i32, &["industry_press", "行业媒体"]),
        (pb::SourceChannel::Internet as i32, &["internet", "互联网", "网络"]),
        (pb::SourceChannel::IndustryAssociation as i32, &["industry_association", "行业协会"]),
        (pb::SourceChannel::RetailBrandListing as i32, &["retail_brand_listing", "零售品牌名录"]),
        (pb::SourceChannel::PartnerReferral as i32, &["partner_referral", "合作伙伴推荐", "转介绍"]),
        (pb::SourceChannel::MarketingCampaign as i32, &["marketing_campaign", "营销活动", "市场活动"]),
        (pb::SourceChannel::WalkIn as i32, &["walk_in", "上门", "自然到访"]),
    ],
};

pub const ADDRESS_KIND: Vocabulary = Vocabulary {
    what: "address kind",
    prefix: "address_kind_",
    values: &[
        (pb::AddressKind::HeadOffice as i32, &["head_office", "总部", "总公司"]),
        (pb::AddressKind::Branch as i32, &["branch", "分支机构", "分公司"]),
        (pb::AddressKind::ServiceSite as i32, &["service_site", "服务网点", "服务地点"]),
        (pb::AddressKind::Home as i32, &["home", "住宅", "家庭住址"]),
    ],
};

impl Vocabulary {
    /// The proto number of `value`, case, spaces and hyphens aside.
    pub fn parse(&self, value: &str) -> Result<i32, String> {
        let key = value.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        let key = key.strip_prefix(self.prefix).unwrap_or(&key);
        self.values.iter().find(|(_, names)| names.contains(&key)).map(|(number, _)| *number).ok_or_else(|| {
            let known: Vec<String> = self
                .values
                .iter()
                .map(|(_, names)| match names.iter().find(|n| !n.is_ascii()) {
                    Some(chinese) => format!("{} ({chinese})", names[0]),
                    None => names[0].to_string(),
                })
                .collect();
            format!("{value:?} is not a {}; use one of {}", self.what, known.join(", "))
        })
    }
}

/// A collection time: RFC 3339 with its offset, or a date or a date and
/// time of day in `zone`, with `-` or `/` between the date's parts, or the
/// Chinese `2024年3月5日`.
pub fn parse_time(value: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    const DATE_TIMES: [&str; 6] = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
        "%Y年%m月%d日 %H:%M",
    ];
    const DATES: [&str; 3] = ["%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日"];
    let v = value.trim();
    let bad = || format!("{value:?} is not a time; write 2024-03-05, 2024-03-05 14:30 or 2024-03-05T14:30:00+08:00");
    let at = if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        t.with_timezone(&Utc)
    } else {
        let local = DATE_TIMES
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
            .or_else(|| {
                DATES.iter().find_map(|f| NaiveDate::parse_from_str(v, f).ok()).map(|d| d.and_time(Default::default()))
            })
            .ok_or_else(bad)?;
        zone.from_local_datetime(&local).earliest().ok_or_else(bad)?.with_timezone(&Utc)
    };
    // What a protobuf Timestamp (and the service) can hold.
    if !(1..=9999).contains(&chrono::Datelike::year(&at)) {
        return Err(format!("{value:?} is outside the years 1 to 9999"));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_are_accepted_in_english_proto_and_chinese_spellings() {
        let org = pb::PartyKind::Organization as i32;
        for v in ["organization", "Organization", "PARTY_KIND_ORGANIZATION", " 企业 ", "公司"] {
            assert_eq!(PARTY_KIND.parse(v), Ok(org), "{v}");
        }
        assert_eq!(SOURCE_CHANNEL.parse("Trade show"), Ok(pb::SourceChannel::TradeShow as i32));
        assert_eq!(SOURCE_CHANNEL.parse("trade-show"), Ok(pb::SourceChannel::TradeShow as i32));
        assert_eq!(ADDRESS_KIND.parse("总部"), Ok(pb::AddressKind::HeadOffice as i32));
        let err = PARTY_KIND.parse("集体").unwrap_err();
        assert_eq!(err, r#""集体" is not a kind; use one of person (个人), organization (企业)"#);
    }

    #[test]
    fn times_are_read_in_the_zone_unless_they_carry_an_offset() {
        let zone: Tz = "Asia/Shanghai".parse().unwrap();
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(parse_time("2024-03-05", zone), Ok(utc("2024-03-04T16:00:00Z")));
        assert_eq!(parse_time("2024/3/5 14:30", zone), Ok(utc("2024-03-05T06:30:00Z")));
        assert_eq!(parse_time("2024年3月5日", zone), Ok(utc("2024-03-04T16:00:00Z")));
        assert_eq!(parse_time("2024-03-05T14:30:00Z", zone), Ok(utc("2024-03-05T14:30:00Z")));
        assert!(parse_time("2024-02-30", zone).is_err());
        assert!(parse_time("next week", zone).is_err());
        assert!(parse_time("20240-01-01", zone).is_err());
    }
}

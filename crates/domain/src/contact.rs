//! Phone numbers and email addresses, parsed into a canonical form so that
//! duplicates are found however they were typed (CUS-1, CUS-2).

use crate::{Invalid, name::width_fold};

/// A phone number in E.164 form (`+8613800138000`), with its extension
/// after `;ext=` when it has one (`+867558601338;ext=8001`, as RFC 3966
/// writes it). Numbers without an international prefix are taken as
/// Chinese, as staff type them (CUS-1):
/// - mobiles: 11 digits starting with 1 (`138 0013 8000`);
/// - landlines with their 0-prefixed area code, 2 digits for the big cities
///   and 3 for the rest (`010-6552 1234`, `0571-88886666`, `(0755) 8601 3388`);
/// - service numbers 400 and 800 (`400-810-8888`), kept as `+86400…`;
/// - the national short service numbers 95xxx and 96xxx (`95598`, the grid's
///   hotline), which have no international form and are kept as `+8695598`;
/// - an extension after a landline: `转 8001`, `分机 8001`, `ext 8001`,
///   `x8001`, `#8001`, or a last `-8001` group after a complete landline.
///
/// Whether a number exists is decided by libphonenumber's metadata (the
/// `phonenumber` crate), for China and every other country alike; a mobile
/// takes a fast path because it is most of what is typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

/// Longest extension kept (PBX extensions are 3 to 6 digits in practice).
const MAX_EXTENSION_DIGITS: usize = 6;

impl Phone {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let folded = width_fold(input);
        let s = folded.trim();
        if s.is_empty() {
            return Err(Invalid::new("is empty"));
        }
        let (number, extension) = split_extension(s)?;
        match (parse_number(number), extension) {
            (Ok(p), None) => Ok(p),
            (Ok(p), Some(ext)) => p.with_extension(ext),
            // `0755-86013388-8001`: the last group of a landline written in
            // groups is its extension when the rest is a number on its own.
            (Err(e), None) => match number.rsplit_once('-') {
                Some((head, tail)) if is_extension(tail.trim()) => match parse_number(head) {
                    Ok(p) if p.is_landline() => p.with_extension(tail.trim()),
                    _ => Err(e),
                },
                _ => Err(e),
            },
            (Err(e), Some(_)) => Err(e),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number without its extension: what identifies the line a
    /// customer is reached on, for duplicate checks (CUS-2).
    pub fn line(&self) -> &str {
        Self::line_of(&self.0)
    }

    /// [`Phone::line`] of a number stored in canonical form.
    pub fn line_of(canonical: &str) -> &str {
        canonical.split_once(";ext=").map_or(canonical, |(line, _)| line)
    }

    /// A number a switchboard answers: a landline (Chinese or foreign) or a
    /// 400/800 service number, not a mobile or a 5-digit short number.
    fn takes_extension(&self) -> bool {
        match self.0.strip_prefix("+86") {
            Some(n) => n.len() > 5 && (n.starts_with("10") || !n.starts_with('1')),
            None => true,
        }
    }

    fn is_landline(&self) -> bool {
        self.takes_extension() && !self.0.starts_with("+86400") && !self.0.starts_with("+86800")
    }

    fn with_extension(self, ext: &str) -> Result<Self, Invalid> {
        if !self.takes_extension() {
            return Err(Invalid::new("is a mobile or short number, which has no extension"));
        }
        if !is_extension(ext) {
            return Err(Invalid::new(format!("has an extension that is not 1 to {MAX_EXTENSION_DIGITS} digits")));
        }
        Ok(Phone(format!("{};ext={ext}", self.0)))
    }
}

fn is_extension(s: &str) -> bool {
    (1..=MAX_EXTENSION_DIGITS).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// Splits `0755-86013388 转 8001` into the number and its extension.
fn split_extension(s: &str) -> Result<(&str, Option<&str>), Invalid> {
    const MARKERS: [&str; 8] = [";ext=", "转", "分机", "ext.", "ext", "x", "X", "#"];
    let lower_at = MARKERS.iter().filter_map(|m| s.find(m).map(|at| (at, m.len()))).min();
    let Some((at, len)) = lower_at else {
        return Ok((s, None));
    };
    let (number, ext) = (s[..at].trim(), s[at + len..].trim());
    let ext = ext.trim_start_matches([':', '.']).trim();
    if number.is_empty() || ext.is_empty() {
        return Err(Invalid::new("has an extension marker without a number and an extension"));
    }
    Ok((number, Some(ext)))
}

fn parse_number(s: &str) -> Result<Phone, Invalid> {
    let (plus, rest) = match s.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' | '.' => {}
            _ => return Err(Invalid::new(format!("has an unexpected character {c:?}"))),
        }
    }
    // International form: +CC… or 00CC…; otherwise a Chinese national number.
    let international = if plus { Some(digits.as_str()) } else { digits.strip_prefix("00") };
    match international {
        Some(intl) => match intl.strip_prefix("86") {
            // A Chinese trunk 0 typed after +86 (`+86 0571 …`) is dropped.
            Some(cn) => parse_chinese(cn.strip_prefix('0').unwrap_or(cn), true),
            None => parse_foreign(intl),
        },
        None => match digits.strip_prefix('0') {
            Some(after_trunk) => parse_chinese(after_trunk, true),
            None => parse_chinese(&digits, false),
        },
    }
}

/// `n` is a Chinese number without country code or trunk 0; `with_prefix`
/// says whether one of them was typed, which an area code needs.
fn parse_chinese(n: &str, with_prefix: bool) -> Result<Phone, Invalid> {
    let is_mobile = n.len() == 11 && n.starts_with('1') && matches!(n.as_bytes()[1], b'3'..=b'9');
    let short_service = n.len() == 5 && (n.starts_with("95") || n.starts_with("96"));
    if is_mobile || short_service {
        return Ok(Phone(format!("+86{n}")));
    }
    let service = n.len() == 10 && (n.starts_with("400") || n.starts_with("800"));
    // Beijing's area code 10 is the only one that starts with 1.
    if n.starts_with('1') && (!with_prefix || !n.starts_with("10")) {
        return Err(Invalid::new("is not a valid Chinese mobile number (11 digits starting with 13-19)"));
    }
    if !with_prefix && !service {
        return Err(Invalid::new("needs its area code (0571-…) or an international prefix (+86 …)"));
    }
    // The big cities (10, 2x) have 8-digit numbers after their 2-digit
    // code; libphonenumber alone lets an extra digit through.
    let big_city = n.starts_with("10") || n.starts_with('2');
    if big_city && n.len() != 10 {
        return Err(Invalid::new("is not a valid Chinese landline (area code and a 7 or 8 digit number)"));
    }
    let parsed = phonenumber::parse(Some(phonenumber::country::Id::CN), format!("+86{n}"))
        .map_err(|_| Invalid::new("is not a valid Chinese phone number"))?;
    if !phonenumber::is_valid(&parsed) {
        return Err(Invalid::new(if service {
            "is not a valid 400/800 service number"
        } else {
            "is not a valid Chinese landline (area code and a 7 or 8 digit number)"
        }));
    }
    Ok(Phone(format!("+86{n}")))
}

fn parse_foreign(digits: &str) -> Result<Phone, Invalid> {
    if !(7..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err(Invalid::new("is not a valid international number"));
    }
    let parsed = phonenumber::parse(None, format!("+{digits}"))
        .map_err(|_| Invalid::new("is not a valid international number"))?;
    if !phonenumber::is_valid(&parsed) {
        return Err(Invalid::new("is not a valid number for its country"));
    }
    Ok(Phone(parsed.format().mode(phonenumber::Mode::E164).to_string()))
}

/// An email address, trimmed and lower-cased (`Zhang.San@Example.CN` and
/// `zhang.san@example.cn` are the same mailbox for matching purposes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = width_fold(input).trim().to_lowercase();
        if s.is_empty() {
            return Err(Invalid::new("is empty"));
        }
        if s.len() > 254 {
            return Err(Invalid::new("must be at most 254 characters"));
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(Invalid::new("must contain @"));
        };
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(Invalid::new("is not a valid email address"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')) {
            return Err(Invalid::new("must not contain spaces or < > , ; \""));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
            || !domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.')
        {
            return Err(Invalid::new("has an invalid domain"));
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chinese_numbers_in_any_spelling_are_the_same() {
        let want = Phone::parse("+8613800138000").ok();
        for s in ["13800138000", "138-0013-8000", "+86 138 0013 8000", "008613800138000", "１３８００１３８０００"]
        {
            assert_eq!(Phone::parse(s).ok(), want, "{s}");
        }
        assert_eq!(Phone::parse("010-6552 1234").map(|p| p.0), Ok("+861065521234".into()));
        assert_eq!(Phone::parse("+1 (415) 555-0100").map(|p| p.0), Ok("+14155550100".into()));
    }

    /// Issue 14: most cities have a 3-digit area code and an 8-digit number.
    #[test]
    fn landlines_of_every_city_are_accepted() {
        for (typed, want) in [
            ("0571-88886666", "+8657188886666"),
            ("0755-86013388", "+8675586013388"),
            ("0512-65223456", "+8651265223456"),
            ("+86 755 8601 3388", "+8675586013388"),
            ("+86 (0)755 8601 3388", "+8675586013388"),
            ("(0755) 8601 3388", "+8675586013388"),
            ("０７５５－８６０１３３８８", "+8675586013388"),
            ("021-6321 1234", "+862163211234"),
            ("0871-6313 1234", "+8687163131234"),
            ("0086 571 8888 6666", "+8657188886666"),
            ("400-810-8888", "+864008108888"),
            ("800-820-8820", "+868008208820"),
            ("95598", "+8695598"),
            ("96777", "+8696777"),
        ] {
            assert_eq!(Phone::parse(typed).map(|p| p.0), Ok(want.to_string()), "{typed}");
        }
    }

    #[test]
    fn extensions_are_kept_apart_from_the_line() {
        for typed in [
            "0755-86013388 转 8001",
            "0755-86013388转8001",
            "0755-86013388 分机 8001",
            "0755-86013388 ext 8001",
            "0755-86013388 ext. 8001",
            "0755-86013388 x8001",
            "0755-86013388#8001",
            "0755-86013388-8001",
            "+86 755 8601 3388 ext 8001",
        ] {
            let p = Phone::parse(typed).map_err(|e| format!("{typed}: {}", e.reason)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.as_str(), "+8675586013388;ext=8001", "{typed}");
            assert_eq!(p.line(), "+8675586013388", "{typed}");
        }
        assert_eq!(Phone::parse("13800138000").map(|p| p.line().to_string()), Ok("+8613800138000".into()));
    }

    #[test]
    fn bad_phones_are_refused() {
        for s in [
            "",
            "abc",
            "12345",
            "6552 1234",
            "88886666",
            "+86 238 0013 8000",
            "12800138000",
            "1380013800",
            "0571-8888",
            "13800138000 ext 5",
            "0755-86013388 转",
            "转 8001",
            "0755-86013388 转 1234567",
            "400-810-888",
            "+0123",
            "+1 555 0100",
            "95598 ext 1",
        ] {
            assert!(Phone::parse(s).is_err(), "{s} should be refused");
        }
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse(" Zhang.San@Example.CN ").map(|e| e.0), Ok("zhang.san@example.cn".into()));
        assert_eq!(Email::parse("王@燃气.中国").map(|e| e.0), Ok("王@燃气.中国".into()));
        for s in ["", "a", "a@b", "@b.cn", "a@@b.cn", "a b@c.cn", "a@-b.cn", "a@b..cn"] {
            assert!(Email::parse(s).is_err(), "{s} should be refused");
        }
    }

    proptest! {
        #[test]
        fn parsed_phone_is_a_fixed_point(n in "1[3-9][0-9]{9}") {
            let p = Phone::parse(&n).map_err(|e| TestCaseError::fail(e.reason))?;
            prop_assert_eq!(Phone::parse(p.as_str()), Ok(p.clone()));
            prop_assert!(p.as_str().starts_with("+86"));
        }

        #[test]
        // Local numbers start with 2-8, except that Beijing's and Shanghai's
        // 800 range is not allocated (libphonenumber refuses 010-8000 xxxx,
        // which a dialled 800 service number would collide with).
        fn landline_is_a_fixed_point(area in "(10|2[0-57-9]|57[1-9]|755|512)", number in "([2-7][0-9]|8[1-9])[0-9]{6}") {
            let p = Phone::parse(&format!("0{area}-{number}")).map_err(|e| TestCaseError::fail(e.reason))?;
            prop_assert_eq!(p.as_str(), format!("+86{area}{number}"));
            prop_assert_eq!(Phone::parse(p.as_str()), Ok(p.clone()));
        }

        #[test]
        fn extension_survives_a_round_trip(number in "[2-8][0-9]{7}", ext in "[0-9]{1,6}") {
            let p = Phone::parse(&format!("0571-{number} 转 {ext}")).map_err(|e| TestCaseError::fail(e.reason))?;
            prop_assert_eq!(p.line(), format!("+86571{number}"));
            let again = Phone::parse(&p.as_str().replace(";ext=", " ext ")).map_err(|e| TestCaseError::fail(e.reason))?;
            prop_assert_eq!(&again, &p);
            prop_assert_eq!(Phone::parse(p.as_str()), Ok(p.clone()));
        }

        #[test]
        fn phone_parse_never_panics(s in "\\PC{0,30}") {
            let _ = Phone::parse(&s);
        }

        #[test]
        fn email_parse_is_idempotent(local in "[a-zA-Z0-9._]{1,20}", dom in "[a-z0-9]{1,10}", tld in "[a-z]{2,5}") {
            let e = Email::parse(&format!("{local}@{dom}.{tld}")).map_err(|e| TestCaseError::fail(e.reason))?;
            prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
        }
    }
}

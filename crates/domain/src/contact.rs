//! Phone numbers and email addresses, parsed into a canonical form so that
//! duplicates are found however they were typed (CUS-1, CUS-2).

use crate::{Invalid, name::width_fold};

/// A phone number in E.164 form (`+8613800138000`). Numbers without an
/// international prefix are taken as Chinese: an 11-digit mobile starting
/// with 1, or a landline with its 0-prefixed area code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let folded = width_fold(input);
        let s = folded.trim();
        if s.is_empty() {
            return Err(Invalid::new("is empty"));
        }
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
        let e164 = if plus {
            digits
        } else if let Some(intl) = digits.strip_prefix("00") {
            intl.to_string()
        } else if digits.len() == 11 && digits.starts_with('1') {
            format!("86{digits}")
        } else if let Some(national) = digits.strip_prefix('0') {
            if !(9..=11).contains(&national.len()) {
                return Err(Invalid::new("is not a valid Chinese landline (area code + number)"));
            }
            format!("86{national}")
        } else {
            return Err(Invalid::new("needs an area code or an international prefix (+86 ...)"));
        };
        if !(8..=15).contains(&e164.len()) || e164.starts_with('0') {
            return Err(Invalid::new("is not a valid international number"));
        }
        if e164.starts_with("86") && e164.len() == 13 && !e164[2..].starts_with('1') {
            return Err(Invalid::new("is not a valid Chinese mobile number"));
        }
        Ok(Phone(format!("+{e164}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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

    #[test]
    fn bad_phones_are_refused() {
        for s in ["", "abc", "12345", "6552 1234", "+86 238 0013 8000", "13800138000 ext 5", "+0123"] {
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

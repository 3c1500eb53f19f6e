//! Validated inputs. Each field has one validator here; the API edge maps
//! protobuf fields through them and reports every bad field at once. A value
//! of these types is valid by construction.

use crm_domain::{Email, Invalid, Phone, ids::CustomerId, text, width_fold};

use super::{AddressKind, PartyKind, SizeBand, SourceChannel};

pub const MAX_TAGS: usize = 20;
pub const MAX_CONTACTS: usize = 50;
pub const MAX_ADDRESSES: usize = 50;
pub const MAX_PHONES: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomer {
    pub kind: PartyKind,
    pub display_name: String,
    pub legal_name: String,
    pub registration_number: Option<String>,
    pub industry: String,
    pub size_band: Option<SizeBand>,
    pub region: String,
    pub summary: String,
    pub source_channel: Option<SourceChannel>,
    pub tags: Vec<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub owner_id: Option<String>,
    pub branch: Option<String>,
    pub referred_by: Option<CustomerId>,
    pub contacts: Vec<NewContact>,
    pub addresses: Vec<NewAddress>,
    /// CUS-5: when the information was collected (default: now).
    pub collected_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl NewCustomer {
    /// What duplicate detection compares (CUS-2).
    pub fn probe(&self) -> DuplicateProbe {
        // The line, not the extension, says who a number reaches.
        let line = |p: &String| Phone::line_of(p).to_string();
        let mut phones: Vec<String> = self.phone.iter().map(line).collect();
        let mut emails: Vec<String> = self.email.iter().cloned().collect();
        for c in &self.contacts {
            phones.extend(c.phones.iter().map(line));
            emails.extend(c.email.iter().cloned());
        }
        phones.sort();
        phones.dedup();
        emails.sort();
        emails.dedup();
        let terms = super::search::NameTerms::of(&self.display_name, &self.legal_name);
        DuplicateProbe {
            phones,
            emails,
            registration_number: self.registration_number.clone(),
            core_grams: terms.core_grams,
            region: self.region.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateProbe {
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub registration_number: Option<String>,
    /// Bigrams of the distinctive parts of the names (CUS-2 similarity).
    pub core_grams: Vec<String>,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewContact {
    pub name: String,
    pub position: String,
    pub phones: Vec<String>,
    pub email: Option<String>,
    pub decision_maker: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAddress {
    pub kind: AddressKind,
    pub province: String,
    pub city: String,
    pub district: String,
    pub street: String,
    pub postal_code: String,
}

/// A partial update of profile fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerPatch {
    pub kind: Option<PartyKind>,
    pub display_name: Option<String>,
    pub legal_name: Option<String>,
    pub registration_number: Option<Option<String>>,
    pub industry: Option<String>,
    pub size_band: Option<Option<SizeBand>>,
    pub region: Option<String>,
    pub summary: Option<String>,
    pub source_channel: Option<Option<SourceChannel>>,
    pub tags: Option<Vec<String>>,
    pub phone: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub referred_by: Option<Option<CustomerId>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactPatch {
    pub name: Option<String>,
    pub position: Option<String>,
    pub phones: Option<Vec<String>>,
    pub email: Option<Option<String>>,
    pub decision_maker: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddressPatch {
    pub kind: Option<AddressKind>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub street: Option<String>,
    pub postal_code: Option<String>,
}

// ---- field validators -------------------------------------------------------

pub fn display_name(s: &str) -> Result<String, Invalid> {
    text::required(s, 200)
}

pub fn legal_name(s: &str) -> Result<String, Invalid> {
    text::single_line(s, 300)
}

pub fn short_text(s: &str) -> Result<String, Invalid> {
    text::single_line(s, 100)
}

pub fn summary(s: &str) -> Result<String, Invalid> {
    text::optional(s, 4000)
}

/// Tax / unified social credit / registration number: width-folded, upper
/// case, spaces and dashes removed; 5..=30 letters and digits. Empty is none.
pub fn registration_number(s: &str) -> Result<Option<String>, Invalid> {
    let n: String = width_fold(s).chars().filter(|c| !matches!(c, ' ' | '-')).collect::<String>().to_uppercase();
    if n.is_empty() {
        return Ok(None);
    }
    if !(5..=30).contains(&n.len()) || !n.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Invalid::new("must be 5 to 30 letters and digits"));
    }
    Ok(Some(n))
}

/// Empty is none; otherwise a valid phone number in E.164 form.
pub fn optional_phone(s: &str) -> Result<Option<String>, Invalid> {
    if s.trim().is_empty() { Ok(None) } else { Phone::parse(s).map(|p| Some(p.as_str().to_string())) }
}

pub fn phones(list: &[String]) -> Result<Vec<String>, Invalid> {
    if list.len() > MAX_PHONES {
        return Err(Invalid::new(format!("at most {MAX_PHONES} phone numbers")));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let phone = Phone::parse(p).map_err(|e| Invalid::new(format!("[{i}] {}", e.reason)))?;
        if !out.contains(&phone.as_str().to_string()) {
            out.push(phone.as_str().to_string());
        }
    }
    Ok(out)
}

pub fn optional_email(s: &str) -> Result<Option<String>, Invalid> {
    if s.trim().is_empty() { Ok(None) } else { Email::parse(s).map(|e| Some(e.as_str().to_string())) }
}

/// Free tags: trimmed, at most 50 characters each, duplicates dropped.
pub fn tags(list: &[String]) -> Result<Vec<String>, Invalid> {
    if list.len() > MAX_TAGS {
        return Err(Invalid::new(format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for t in list {
        let t = text::required(t, 50).map_err(|e| Invalid::new(format!("each tag {}", e.reason)))?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

pub fn optional_customer_id(s: &str) -> Result<Option<CustomerId>, Invalid> {
    if s.trim().is_empty() { Ok(None) } else { CustomerId::parse(s).map(Some) }
}

pub fn owner_id(s: &str) -> Result<String, Invalid> {
    text::single_line(s, 100).and_then(|o| if o.is_empty() { Err(Invalid::new("is required")) } else { Ok(o) })
}

pub fn reason(s: &str) -> Result<String, Invalid> {
    text::required(s, 1000)
}

pub fn street(s: &str) -> Result<String, Invalid> {
    text::required(s, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_numbers_are_normalised() {
        assert_eq!(registration_number(" 91110000-１０１２３４５６７Ｘ "), Ok(Some("91110000101234567X".into())));
        assert_eq!(registration_number(""), Ok(None));
        assert!(registration_number("123").is_err());
        assert!(registration_number("9111号0000").is_err());
    }

    #[test]
    fn tags_are_trimmed_and_deduplicated() {
        assert_eq!(tags(&[" 燃气 ".into(), "燃气".into(), "vip".into()]), Ok(vec!["燃气".into(), "vip".into()]));
        assert!(tags(&["".into()]).is_err());
        assert!(tags(&vec!["t".to_string(); 21]).is_err());
    }

    #[test]
    fn phones_are_canonical_and_deduplicated() {
        assert_eq!(phones(&["138 0013 8000".into(), "+8613800138000".into()]), Ok(vec!["+8613800138000".into()]));
        assert!(phones(&["12".into()]).is_err_and(|e| e.reason.starts_with("[0]")));
    }

    #[test]
    fn probe_gathers_contact_phones_and_emails() {
        let n = NewCustomer {
            kind: PartyKind::Organization,
            display_name: "ＡＢＣ 燃气".into(),
            legal_name: String::new(),
            registration_number: None,
            industry: String::new(),
            size_band: None,
            region: "CN-BJ".into(),
            summary: String::new(),
            source_channel: None,
            tags: vec![],
            phone: Some("+8613800138000".into()),
            email: None,
            owner_id: None,
            branch: None,
            referred_by: None,
            contacts: vec![NewContact {
                name: "王".into(),
                position: String::new(),
                phones: vec!["+8613900139000".into(), "+8613800138000".into()],
                email: Some("w@abc.cn".into()),
                decision_maker: true,
            }],
            addresses: vec![],
            collected_at: None,
        };
        let p = n.probe();
        assert_eq!(p.phones, vec!["+8613800138000".to_string(), "+8613900139000".to_string()]);
        assert_eq!(p.emails, vec!["w@abc.cn".to_string()]);
        assert!(p.core_grams.contains(&"abc".to_string()) && p.core_grams.contains(&"燃气".to_string()));
    }
}

//! The columns of a customer book and how one row becomes a `Customer`
//! message: named after the message's fields, one contact and one address
//! flattened into `contact_*` and `address_*` columns.

use chrono_tz::Tz;
use crm_platform::proto_time;
use crm_proto::{codec::has_forbidden_control, customers::v1 as pb};

use super::values::{ADDRESS_KIND, PARTY_KIND, SIZE_BAND, SOURCE_CHANNEL, Vocabulary, parse_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Kind,
    DisplayName,
    LegalName,
    RegistrationNumber,
    Industry,
    SizeBand,
    Region,
    Summary,
    SourceChannel,
    Tags,
    Phone,
    Email,
    OwnerId,
    Branch,
    ReferredByCustomerId,
    CollectTime,
    ContactName,
    ContactPosition,
    ContactPhones,
    ContactEmail,
    AddressKind,
    AddressProvince,
    AddressCity,
    AddressDistrict,
    AddressStreet,
    AddressPostalCode,
}

/// Every column, in `Column` order: its header name and the field it fills,
/// named as the service names it in errors.
pub const COLUMNS: [(Column, &str, &str); 26] = [
    (Column::Kind, "kind", "customer.kind"),
    (Column::DisplayName, "display_name", "customer.display_name"),
    (Column::LegalName, "legal_name", "customer.legal_name"),
    (Column::RegistrationNumber, "registration_number", "customer.registration_number"),
    (Column::Industry, "industry", "customer.industry"),
    (Column::SizeBand, "size_band", "customer.size_band"),
    (Column::Region, "region", "customer.region"),
    (Column::Summary, "summary", "customer.summary"),
    (Column::SourceChannel, "source_channel", "customer.source_channel"),
    (Column::Tags, "tags", "customer.tags"),
    (Column::Phone, "phone", "customer.phone"),
    (Column::Email, "email", "customer.email"),
    (Column::OwnerId, "owner_id", "customer.owner_id"),
    (Column::Branch, "branch", "customer.branch"),
    (Column::ReferredByCustomerId, "referred_by_customer_id", "customer.referred_by_customer_id"),
    (Column::CollectTime, "collect_time", "customer.collect_time"),
    (Column::ContactName, "contact_name", "customer.contacts[0].name"),
    (Column::ContactPosition, "contact_position", "customer.contacts[0].position"),
    (Column::ContactPhones, "contact_phones", "customer.contacts[0].phones"),
    (Column::ContactEmail, "contact_email", "customer.contacts[0].email"),
    (Column::AddressKind, "address_kind", "customer.addresses[0].kind"),
    (Column::AddressProvince, "address_province", "customer.addresses[0].province"),
    (Column::AddressCity, "address_city", "customer.addresses[0].city"),
    (Column::AddressDistrict, "address_district", "customer.addresses[0].district"),
    (Column::AddressStreet, "address_street", "customer.addresses[0].street"),
    (Column::AddressPostalCode, "address_postal_code", "customer.addresses[0].postal_code"),
];

/// Other names a column goes by.
const ALIASES: [(&str, Column); 1] = [("contact_phone", Column::ContactPhones)];

/// Without these no row could be a customer: refused up front.
const REQUIRED: [Column; 2] = [Column::Kind, Column::DisplayName];

/// What separates the items of a list cell (tags, a contact's phones).
const LIST_SEPARATORS: [char; 5] = [';', '；', ',', '，', '、'];

/// The kind sent for a row with a problem found here: a number no
/// `PartyKind` has, so the service refuses the row and counts it invalid
/// while still checking its other fields. The summary puts the problems
/// found here in place of the service's complaint about this kind.
pub const UNSENDABLE_KIND: i32 = -1;

impl Column {
    pub fn name(self) -> &'static str {
        COLUMNS[self as usize].1
    }

    pub fn field(self) -> &'static str {
        COLUMNS[self as usize].2
    }

    fn by_name(header: &str) -> Option<Column> {
        let key = header.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        COLUMNS.iter().find(|c| c.1 == key).map(|c| c.0).or_else(|| ALIASES.iter().find(|a| a.0 == key).map(|a| a.1))
    }
}

/// The column a field named by the service was read from (`customer.tags[2]`
/// is `tags`).
pub fn column_of(field: &str) -> Option<&'static str> {
    COLUMNS
        .iter()
        .find(|c| field == c.2 || field.strip_prefix(c.2).is_some_and(|rest| rest.starts_with('[')))
        .map(|c| c.1)
}

/// The header line: which column each cell of a row belongs to.
#[derive(Debug, Default)]
pub struct Header {
    columns: Vec<Column>,
}

impl Header {
    /// Refuses unknown, unnamed, repeated and missing required columns, all
    /// named at once.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Header, String> {
        let mut columns = Vec::new();
        let mut problems = Vec::new();
        let mut unknown = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            match Column::by_name(name) {
                Some(c) if columns.contains(&c) => problems.push(format!("column {} appears twice", c.name())),
                Some(c) => columns.push(c),
                None if name.trim().is_empty() => problems.push(format!("column {} has no name", i + 1)),
                None => unknown.push(format!("{name:?}")),
            }
        }
        if !unknown.is_empty() {
            let known: Vec<&str> = COLUMNS.iter().map(|c| c.1).collect();
            problems
                .insert(0, format!("unknown columns {}; the columns are: {}", unknown.join(", "), known.join(", ")));
        }
        let missing: Vec<&str> = REQUIRED.iter().filter(|c| !columns.contains(c)).map(|c| c.name()).collect();
        if !missing.is_empty() {
            problems.push(format!("missing columns: {}", missing.join(", ")));
        }
        if problems.is_empty() { Ok(Header { columns }) } else { Err(problems.join("; ")) }
    }
}

/// A bad cell found before sending, named like the service names a bad field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub description: String,
}

/// One row as a customer to register, and the problems of its cells. A row
/// with problems is sent all the same, its kind [`UNSENDABLE_KIND`].
pub fn customer<'a>(
    header: &Header,
    cells: impl IntoIterator<Item = &'a str>,
    zone: Tz,
) -> (pb::Customer, Vec<Problem>) {
    let mut c = pb::Customer::default();
    let mut contact: Option<pb::Contact> = None;
    let mut address: Option<pb::Address> = None;
    let mut problems = Vec::new();
    for (&column, cell) in header.columns.iter().zip(cells) {
        let value = cell.trim();
        if value.is_empty() {
            continue;
        }
        let value = if has_forbidden_control(value) {
            let control = value.chars().find(|ch| has_forbidden_control(ch.encode_utf8(&mut [0; 4])));
            let code = control.map(|ch| format!(" (U+{:04X})", u32::from(ch))).unwrap_or_default();
            problems.push(Problem {
                field: column.field(),
                description: format!("contains an invisible control character{code}; delete it"),
            });
            value.chars().filter(|ch| !has_forbidden_control(ch.encode_utf8(&mut [0; 4]))).collect()
        } else {
            value.to_string()
        };
        let mut number = |vocabulary: &Vocabulary| {
            vocabulary.parse(&value).unwrap_or_else(|description| {
                problems.push(Problem { field: column.field(), description });
                0
            })
        };
        match column {
            Column::Kind => c.kind = number(&PARTY_KIND),
            Column::SizeBand => c.size_band = number(&SIZE_BAND),
            Column::SourceChannel => c.source_channel = number(&SOURCE_CHANNEL),
            Column::AddressKind => address.get_or_insert_default().kind = number(&ADDRESS_KIND),
            Column::CollectTime => match parse_time(&value, zone) {
                Ok(t) => c.collect_time = Some(proto_time::to_proto(t)),
                Err(description) => problems.push(Problem { field: column.field(), description }),
            },
            Column::DisplayName => c.display_name = value,
            Column::LegalName => c.legal_name = value,
            Column::RegistrationNumber => c.registration_number = value,
            Column::Industry => c.industry = value,
            Column::Region => c.region = value,
            Column::Summary => c.summary = value,
            Column::Tags => c.tags = list(&value),
            Column::Phone => c.phone = value,
            Column::Email => c.email = value,
            Column::OwnerId => c.owner_id = value,
            Column::Branch => c.branch = value,
            Column::ReferredByCustomerId => c.referred_by_customer_id = value,
            Column::ContactName => contact.get_or_insert_default().name = value,
            Column::ContactPosition => contact.get_or_insert_default().position = value,
            Column::ContactPhones => contact.get_or_insert_default().phones = list(&value),
            Column::ContactEmail => contact.get_or_insert_default().email = value,
            Column::AddressProvince => address.get_or_insert_default().province = value,
            Column::AddressCity => address.get_or_insert_default().city = value,
            Column::AddressDistrict => address.get_or_insert_default().district = value,
            Column::AddressStreet => address.get_or_insert_default().street = value,
            Column::AddressPostalCode => address.get_or_insert_default().postal_code = value,
        }
    }
    if let Some(mut a) = address {
        // A book rarely says what kind its one address is: a person's is
        // their home, an organization's its head office.
        if a.kind == pb::AddressKind::Unspecified as i32 {
            a.kind = if c.kind == pb::PartyKind::Person as i32 {
                pb::AddressKind::Home
            } else {
                pb::AddressKind::HeadOffice
            } as i32;
        }
        c.addresses.push(a);
    }
    c.contacts.extend(contact);
    if !problems.is_empty() {
        c.kind = UNSENDABLE_KIND;
    }
    (c, problems)
}

fn list(value: &str) -> Vec<String> {
    value.split(LIST_SEPARATORS).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(line: &str) -> Result<Header, String> {
        Header::parse(line.split(','))
    }

    #[test]
    fn the_table_is_in_column_order() {
        for (i, (column, _, _)) in COLUMNS.iter().enumerate() {
            assert_eq!(*column as usize, i, "{column:?}");
        }
    }

    #[test]
    fn headers_are_checked_all_at_once() {
        assert!(header("Kind,Display Name,contact_phone").is_ok());
        let err = header("kind,name,phone,phone,,fax").unwrap_err();
        assert!(err.starts_with(r#"unknown columns "name", "fax"; the columns are: kind, display_name,"#), "{err}");
        assert!(err.contains("column phone appears twice"), "{err}");
        assert!(err.contains("column 5 has no name"), "{err}");
        assert!(err.ends_with("missing columns: display_name"), "{err}");
    }

    #[test]
    fn a_row_fills_the_customer_its_contact_and_its_address() {
        let h = header("kind,display_name,tags,contact_name,contact_phones,address_street,phone").unwrap();
        let zone = "Asia/Shanghai".parse().unwrap();
        let (c, problems) = customer(
            &h,
            ["个人", " 王小明 ", "老客户；VIP", "王小明", "13800138000、0571-88886666", "文三路 90 号", ""],
            zone,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.kind, pb::PartyKind::Person as i32);
        assert_eq!(c.display_name, "王小明");
        assert_eq!(c.tags, ["老客户", "VIP"]);
        assert_eq!(c.contacts[0].phones, ["13800138000", "0571-88886666"]);
        assert_eq!(c.addresses[0].kind, pb::AddressKind::Home as i32);
        assert_eq!(c.phone, "");
    }

    #[test]
    fn a_row_with_bad_cells_is_sent_unsendable_with_every_problem() {
        let h = header("kind,display_name,size_band,collect_time,summary").unwrap();
        let zone = "Asia/Shanghai".parse().unwrap();
        let (c, problems) = customer(&h, ["企业", "杭州燃气", "巨型", "昨天", "a\u{b}b"], zone);
        assert_eq!(c.kind, UNSENDABLE_KIND);
        assert_eq!(c.summary, "ab");
        let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["customer.size_band", "customer.collect_time", "customer.summary"]);
        assert!(problems[2].description.contains("U+000B"), "{problems:?}");
    }

    #[test]
    fn fields_named_by_the_service_are_shown_as_columns() {
        assert_eq!(column_of("customer.phone"), Some("phone"));
        assert_eq!(column_of("customer.contacts[0].phones[1]"), Some("contact_phones"));
        assert_eq!(column_of("customer.tags[3]"), Some("tags"));
        assert_eq!(column_of("customer.phones"), None);
        assert_eq!(column_of("customer"), None);
    }
}

//! Writing many customers, contacts and addresses in one statement each
//! (UNNEST of column arrays): a registration writes its parts in three
//! round trips instead of one per part, and an import writes a batch of a
//! thousand customers in as many.
//!
//! Array columns travel as one text per row, their elements joined by U+001F
//! (a control character the API edge refuses in every text field, so it
//! cannot occur in a value) and split again in SQL.

use chrono::{DateTime, Utc};
use crm_domain::ids::CustomerId;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::Result,
    model::{
        Address, Contact, Customer,
        search::{NameTerms, SEARCH_VERSION},
    },
};

const SEP: char = '\u{1f}';

fn joined(items: &[String]) -> String {
    let mut out = String::new();
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.push_str(s);
    }
    out
}

pub async fn insert_contacts(conn: &mut PgConnection, rows: &[(CustomerId, &Contact)]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let (mut ids, mut customers, mut names, mut positions, mut phones, mut emails, mut deciders) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (customer, c) in rows {
        ids.push(c.id.0);
        customers.push(customer.0);
        names.push(c.name.as_str());
        positions.push(c.position.as_str());
        phones.push(joined(&c.phones));
        emails.push(c.email.as_deref());
        deciders.push(c.decision_maker);
    }
    sqlx::query(
        "INSERT INTO customers.contacts (id, customer_id, name, position, phones, email, decision_maker) \
         SELECT id, customer_id, name, position, string_to_array(phones, E'\\x1f'), email, decision_maker \
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[]) \
         AS t(id, customer_id, name, position, phones, email, decision_maker)",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&names)
    .bind(&positions)
    .bind(&phones)
    .bind(&emails)
    .bind(&deciders)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_addresses(conn: &mut PgConnection, rows: &[(CustomerId, &Address)]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let (mut ids, mut customers, mut kinds, mut provinces, mut cities, mut districts, mut streets, mut postal) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (customer, a) in rows {
        ids.push(a.id.0);
        customers.push(customer.0);
        kinds.push(a.kind.as_str());
        provinces.push(a.province.as_str());
        cities.push(a.city.as_str());
        districts.push(a.district.as_str());
        streets.push(a.street.as_str());
        postal.push(a.postal_code.as_str());
    }
    sqlx::query(
        "INSERT INTO customers.addresses (id, customer_id, kind, province, city, district, street, postal_code) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::text[])",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&kinds)
    .bind(&provinces)
    .bind(&cities)
    .bind(&districts)
    .bind(&streets)
    .bind(&postal)
    .execute(conn)
    .await?;
    Ok(())
}

/// The first ownership and stage history of newly registered customers
/// (CUS-3, CUS-9), in one statement.
pub async fn record_registrations(conn: &mut PgConnection, customers: &[&Customer], by: &str) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = customers.iter().map(|c| c.id.0).collect();
    let owners: Vec<&str> = customers.iter().map(|c| c.owner_id.as_str()).collect();
    let branches: Vec<&str> = customers.iter().map(|c| c.branch.as_str()).collect();
    let stages: Vec<&str> = customers.iter().map(|c| c.stage.as_str()).collect();
    sqlx::query(
        "WITH t AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS t(id, owner, branch, stage)), \
         o AS (INSERT INTO customers.ownership_history (customer_id, owner_id, branch, assigned_by, reason) \
               SELECT id, owner, branch, $5, 'registered' FROM t) \
         INSERT INTO customers.stage_history (customer_id, from_stage, to_stage, changed_by, reason) \
         SELECT id, NULL, stage, $5, 'registered' FROM t",
    )
    .bind(&ids)
    .bind(&owners)
    .bind(&branches)
    .bind(&stages)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// One customer of an import: the model, its read document and its row
/// number in the import.
pub struct ImportedCustomer<'a> {
    pub customer: &'a Customer,
    pub doc: Vec<u8>,
    pub row: i64,
}

/// Inserts a batch of an import in one statement. Rows that break a unique
/// key (a registration number taken meanwhile, a row of this import already
/// inserted by an earlier send) are skipped; returns the ids inserted.
pub async fn insert_imported(
    conn: &mut PgConnection,
    import_id: Uuid,
    rows: &[ImportedCustomer<'_>],
) -> Result<Vec<Uuid>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let n = rows.len();
    let mut ids = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut display = Vec::with_capacity(n);
    let mut display_norm = Vec::with_capacity(n);
    let mut legal = Vec::with_capacity(n);
    let mut legal_norm = Vec::with_capacity(n);
    let mut registration = Vec::with_capacity(n);
    let mut industry = Vec::with_capacity(n);
    let mut size_band = Vec::with_capacity(n);
    let mut region = Vec::with_capacity(n);
    let mut summary = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    let mut tags = Vec::with_capacity(n);
    let mut phone = Vec::with_capacity(n);
    let mut email = Vec::with_capacity(n);
    let mut owner = Vec::with_capacity(n);
    let mut branch = Vec::with_capacity(n);
    let mut grade = Vec::with_capacity(n);
    let mut tier = Vec::with_capacity(n);
    let mut level = Vec::with_capacity(n);
    let mut stage = Vec::with_capacity(n);
    let mut referred = Vec::with_capacity(n);
    let mut collected: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut late = Vec::with_capacity(n);
    let mut search_grams = Vec::with_capacity(n);
    let mut core_grams = Vec::with_capacity(n);
    let mut name_core = Vec::with_capacity(n);
    let mut search_text = Vec::with_capacity(n);
    let mut created_by = Vec::with_capacity(n);
    let mut created_at = Vec::with_capacity(n);
    let mut docs = Vec::with_capacity(n);
    let mut row_numbers = Vec::with_capacity(n);
    for r in rows {
        let c = r.customer;
        let terms = NameTerms::of(&c.display_name, &c.legal_name);
        ids.push(c.id.0);
        kinds.push(c.kind.as_str());
        display.push(c.display_name.as_str());
        display_norm.push(crm_domain::normalize_for_match(&c.display_name));
        legal.push(c.legal_name.as_str());
        legal_norm.push(crm_domain::normalize_for_match(&c.legal_name));
        registration.push(c.registration_number.as_deref());
        industry.push(c.industry.as_str());
        size_band.push(c.size_band.map(|s| s.as_str()));
        region.push(c.region.as_str());
        summary.push(c.summary.as_str());
        source.push(c.source_channel.map(|s| s.as_str()));
        tags.push(joined(&c.tags));
        phone.push(c.phone.as_deref());
        email.push(c.email.as_deref());
        owner.push(c.owner_id.as_str());
        branch.push(c.branch.as_str());
        grade.push(c.classification.grade.as_str());
        tier.push(c.classification.value_tier.as_str());
        level.push(c.classification.service_level.as_str());
        stage.push(c.stage.as_str());
        referred.push(c.referred_by.map(|r| r.0));
        collected.push(c.collected_at);
        late.push(c.entry_late);
        search_grams.push(joined(&terms.search_grams));
        core_grams.push(joined(&terms.core_grams));
        name_core.push(terms.name_core);
        search_text.push(terms.search_text);
        created_by.push(c.created_by.as_str());
        created_at.push(c.created_at);
        docs.push(r.doc.as_slice());
        row_numbers.push(r.row);
    }
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO customers.customers (id, kind, display_name, name_norm, legal_name, legal_name_norm, \
         registration_number, industry, size_band, region, summary, source_channel, tags, phone, email, owner_id, \
         branch, grade, value_tier, service_level, stage, referred_by, collected_at, entry_late, search_grams, \
         core_grams, name_core, search_text, search_version, created_by, created_at, updated_at, version, doc, \
         doc_version, import_id, import_row) \
         SELECT id, kind, display_name, name_norm, legal_name, legal_name_norm, registration_number, industry, \
         size_band, region, summary, source_channel, string_to_array(tags, E'\\x1f'), phone, email, owner_id, branch, \
         grade, value_tier, service_level, stage, referred_by, collected_at, entry_late, \
         string_to_array(search_grams, E'\\x1f'), string_to_array(core_grams, E'\\x1f'), name_core, search_text, $31, \
         created_by, created_at, created_at, 1, doc, 1, $32, import_row \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
         $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], \
         $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::uuid[], $23::timestamptz[], \
         $24::bool[], $25::text[], $26::text[], $27::text[], $28::text[], $29::text[], $30::timestamptz[], \
         $33::bytea[], $34::int8[]) \
         AS t(id, kind, display_name, name_norm, legal_name, legal_name_norm, registration_number, industry, size_band, \
         region, summary, source_channel, tags, phone, email, owner_id, branch, grade, value_tier, service_level, \
         stage, referred_by, collected_at, entry_late, search_grams, core_grams, name_core, search_text, created_by, \
         created_at, doc, import_row) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&display)
    .bind(&display_norm)
    .bind(&legal)
    .bind(&legal_norm)
    .bind(&registration)
    .bind(&industry)
    .bind(&size_band)
    .bind(&region)
    .bind(&summary)
    .bind(&source)
    .bind(&tags)
    .bind(&phone)
    .bind(&email)
    .bind(&owner)
    .bind(&branch)
    .bind(&grade)
    .bind(&tier)
    .bind(&level)
    .bind(&stage)
    .bind(&referred)
    .bind(&collected)
    .bind(&late)
    .bind(&search_grams)
    .bind(&core_grams)
    .bind(&name_core)
    .bind(&search_text)
    .bind(&created_by)
    .bind(&created_at)
    .bind(SEARCH_VERSION)
    .bind(import_id)
    .bind(&docs)
    .bind(&row_numbers)
    .fetch_all(conn)
    .await?;
    Ok(inserted)
}

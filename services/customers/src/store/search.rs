//! Index-driven search and duplicate detection over a million customers
//! (CUS-1, CUS-2). Each condition of a query is one index lookup (a GIN
//! posting list of a name term: a Chinese bigram, a pinyin pair or initials,
//! a Latin word trigram; a btree range of phones and emails); only the rows
//! they return are scored, in Rust (`model::search`). Search honours the caller's scope
//! inside every lookup; duplicate detection sees every record (one record
//! per customer) and returns only what identifies a match.

use std::collections::HashMap;

use crm_domain::ids::CustomerId;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::{
    error::Result,
    model::{
        DuplicateCandidate, DuplicateReason,
        access::Scope,
        input::DuplicateProbe,
        search::{Candidate, DUPLICATE_NAME_SIMILARITY, SearchQuery},
    },
};

/// Candidates a search reads back and scores: the best this many by the
/// terms they share with the query. Also the most hits a search returns
/// across its pages (docs/api.md).
pub const CANDIDATE_POOL: i64 = 200;
/// Holders of one term read per lookup (an index-only range scan).
const PER_TERM: i64 = 400;
/// Name terms looked up per query, at most.
const MAX_TERMS: usize = 32;
/// Of them, terms common enough for statistics to list: the rarest ones.
const MAX_COMMON: usize = 8;
/// What a phone or email match counts for, against name terms (a rare name
/// term counts about 8): a contact point identifies a customer.
const POINT_WEIGHT: f32 = 50.0;

/// How common each search term is, from Postgres' own statistics
/// (`pg_stats.most_common_elems` of `search_grams`): a term that is not
/// listed is rare or held by nobody (see `lookup_terms`). Used to choose the
/// terms looked up and to weigh what sharing a term says.
#[derive(Debug, Clone, Default)]
pub struct TermFrequencies {
    search: HashMap<String, f64>,
}

impl TermFrequencies {
    pub fn search(&self, term: &str) -> f64 {
        self.search.get(term).copied().unwrap_or(0.0)
    }
}

/// Reads the term frequencies ANALYZE collected.
pub async fn term_frequencies(conn: &mut PgConnection) -> Result<TermFrequencies> {
    type StatsRow = (Option<Vec<String>>, Option<Vec<f32>>);
    let rows: Vec<StatsRow> = sqlx::query_as(
        "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats \
         WHERE schemaname = 'customers' AND tablename = 'customers' AND attname = 'search_grams'",
    )
    .fetch_all(conn)
    .await?;
    let mut f = TermFrequencies::default();
    for (elems, freqs) in rows {
        f.search = elems
            .unwrap_or_default()
            .into_iter()
            .zip(freqs.unwrap_or_default())
            .map(|(e, q)| (e, f64::from(q)))
            .collect();
    }
    Ok(f)
}

/// `scope` as a condition on the customers table aliased `c`.
fn push_scope(q: &mut QueryBuilder<Postgres>, scope: &Scope) {
    super::push_scope(q, scope);
}

/// The upper end of the range of texts that start with a prefix, in the
/// byte order of `text_pattern_ops`: the prefix followed by the highest
/// character. A range (`~>=~ prefix AND ~<=~ upper`) is an index range even
/// in a prepared statement's generic plan, where `LIKE $1` is not (the
/// pattern is unknown when planning): a salesperson's phone lookups ran as
/// a scan of all of `contact_points` (691 ms at 300 000 customers).
fn prefix_upper(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

#[derive(sqlx::FromRow)]
struct CandidateRow {
    id: Uuid,
    display_name: String,
    legal_name: String,
    search_text: String,
    points: Option<Vec<String>>,
}

/// The query terms to look up. Statistics list only the commonest terms
/// names hold; a term they do not list is either rare or held by no name at
/// all (typed pinyin `huarunranqi` is also split as `hu a`, read as nine
/// "initials" triples and eleven word trigrams; a typo makes bigrams no name
/// has). Either way its lookup is cheap: a short range, or one index
/// descent. So every unlisted term is looked up (at most `MAX_TERMS` in
/// all), and of the listed, common ones only the `MAX_COMMON` rarest, whose
/// holders would otherwise dominate the work. Ranking them together by
/// rarity crowded the real syllable pairs of typed pinyin out of the
/// lookups.
fn lookup_terms(q: &SearchQuery, freq: &TermFrequencies) -> Vec<String> {
    let (mut common, rare): (Vec<&String>, Vec<&String>) = q.grams.iter().partition(|t| freq.search(t) > 0.0);
    common.sort_by(|a, b| freq.search(a).total_cmp(&freq.search(b)));
    let mut out: Vec<String> = common.into_iter().take(MAX_COMMON).cloned().collect();
    out.extend(rare.into_iter().take(MAX_TERMS.saturating_sub(out.len())).cloned());
    out
}

/// How much sharing `term` says about a match: rarer terms say more
/// (inverse document frequency; a term without statistics is rare).
fn weight(freq: &TermFrequencies, term: &str) -> f32 {
    (-(freq.search(term).max(0.000_5)).ln()) as f32
}

/// The customers `q` may match within `scope`, with what scoring needs.
///
/// Each name term is one index-only range scan of `search_terms`, in the
/// caller's scope (a salesperson's own customers are a range of the key, a
/// branch is filtered in the index), capped at `PER_TERM`; phones and emails
/// are btree ranges of `contact_points`. The customers sharing the most
/// (weighted) terms with the query, `CANDIDATE_POOL` of them, are read back
/// in scope and scored. A term held by more customers than its cap adds
/// only its first holders (in key order, so the same query always gets the
/// same candidates and its pages never skip or repeat); customers holding
/// the query's rarer terms are always seen.
#[tracing::instrument(skip(conn, freq))]
pub async fn search_candidates(
    conn: &mut PgConnection,
    scope: &Scope,
    q: &SearchQuery,
    freq: &TermFrequencies,
) -> Result<Vec<(CustomerId, Candidate)>> {
    let terms = lookup_terms(q, freq);
    let weights: Vec<f32> = terms.iter().map(|t| weight(freq, t)).collect();
    if terms.is_empty() && !q.looks_for_contact_points() {
        return Ok(Vec::new());
    }

    let mut b: QueryBuilder<Postgres> =
        QueryBuilder::new("WITH q(term, w) AS (SELECT hashtextextended(t, 0), w FROM unnest(");
    b.push_bind(terms).push("::text[], ").push_bind(weights).push(
        "::float4[]) AS u(t, w)), \
         hits AS (SELECT x.customer_id, q.w FROM q CROSS JOIN LATERAL \
         (SELECT s.customer_id FROM customers.search_terms s WHERE s.term = q.term",
    );
    match scope {
        Scope::All => {}
        Scope::Own(owner) => {
            b.push(" AND s.owner_h = hashtext(").push_bind(owner.clone()).push(")");
        }
        Scope::Branch(branch) => {
            b.push(" AND s.branch_h = hashtext(").push_bind(branch.clone()).push(")");
        }
    }
    b.push(" LIMIT ").push_bind(PER_TERM).push(") x");
    if q.looks_for_contact_points() {
        b.push(" UNION ALL (SELECT DISTINCT p.customer_id, ").push_bind(POINT_WEIGHT).push(
            "::float4 FROM customers.contact_points p JOIN customers.customers c ON c.id = p.customer_id \
             WHERE c.merged_into IS NULL AND (false",
        );
        for exact in [&q.phone, &q.email].into_iter().flatten() {
            b.push(" OR p.value = ").push_bind(exact.clone());
        }
        for prefix in q.phone_prefixes.iter().chain(&q.email_prefix) {
            b.push(" OR (p.value ~>=~ ").push_bind(prefix.clone());
            b.push(" AND p.value ~<=~ ").push_bind(prefix_upper(prefix)).push(")");
        }
        for suffix in q.phone_suffix.iter().chain(&q.email_suffix) {
            let reversed: String = suffix.chars().rev().collect();
            b.push(" OR (reverse(p.value) ~>=~ ").push_bind(reversed.clone());
            b.push(" AND reverse(p.value) ~<=~ ").push_bind(prefix_upper(&reversed)).push(")");
        }
        b.push(")");
        push_scope(&mut b, scope);
        b.push(" LIMIT ").push_bind(PER_TERM).push(")");
    }
    b.push(
        "), top AS (SELECT customer_id, sum(w) AS w FROM hits GROUP BY customer_id \
         ORDER BY sum(w) DESC, customer_id LIMIT ",
    )
    .push_bind(CANDIDATE_POOL)
    .push(
        ") SELECT c.id, c.display_name, c.legal_name, c.search_text, \
         CASE WHEN ",
    )
    .push_bind(q.looks_for_contact_points())
    .push(
        " THEN (SELECT array_agg(p.value) FROM customers.contact_points p WHERE p.customer_id = c.id) END AS points \
         FROM top JOIN customers.customers c ON c.id = top.customer_id WHERE c.merged_into IS NULL",
    );
    push_scope(&mut b, scope);
    let rows: Vec<CandidateRow> = b.build_query_as().fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                CustomerId(r.id),
                Candidate {
                    display_name: r.display_name,
                    legal_name: r.legal_name,
                    search_text: r.search_text,
                    points: r.points.unwrap_or_default(),
                },
            )
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct IdentityRow {
    id: Uuid,
    display_name: String,
    region: String,
    owner_id: String,
    core_grams: Vec<String>,
    kinds: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct NameRow {
    id: Uuid,
    display_name: String,
    region: String,
    owner_id: String,
    core_grams: Vec<String>,
}

/// Takes a transaction-scoped advisory lock on each identity value (phone,
/// email), in one order, so that two registrations sharing one are checked
/// one after the other: the second's duplicate check sees the first.
pub async fn lock_identities<'a>(conn: &mut PgConnection, values: impl Iterator<Item = &'a String>) -> Result<()> {
    let values: Vec<&str> = values.map(String::as_str).collect();
    if values.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(h)) FROM ( \
           SELECT DISTINCT hashtextextended('identity:' || v, 0) AS h FROM unnest($1::text[]) v ORDER BY h) t",
    )
    .bind(&values)
    .execute(conn)
    .await?;
    Ok(())
}

/// Likely duplicates of a customer about to be registered (CUS-2), strongest
/// first: the same registration number, phone or email (the customer's or
/// any contact's: an identity match), then names whose distinctive parts
/// are at least `DUPLICATE_NAME_SIMILARITY` alike in the same region. Every
/// candidate above the threshold is considered: the name lookup counts, in
/// the index of `core_terms`, the grams each customer of the region shares
/// with the new name, with no row cap, and reads back only the most similar
/// ones the answer can show (`limit` strongest).
#[tracing::instrument(skip(conn))]
pub async fn find_duplicates(
    conn: &mut PgConnection,
    p: &DuplicateProbe,
    limit: usize,
) -> Result<Vec<DuplicateCandidate>> {
    let mut found: HashMap<Uuid, DuplicateCandidate> = HashMap::new();
    let points: Vec<String> = p.phones.iter().chain(&p.emails).cloned().collect();
    if !points.is_empty() || p.registration_number.is_some() {
        let rows: Vec<IdentityRow> = sqlx::query_as(
            "SELECT c.id, c.display_name, c.region, c.owner_id, c.core_grams, array_agg(DISTINCT m.kind) AS kinds FROM ( \
               SELECT p.customer_id AS id, p.kind FROM customers.contact_points p WHERE p.value = ANY($1) \
               UNION ALL \
               SELECT c.id, 'registration_number' FROM customers.customers c WHERE c.registration_number = $2 \
             ) m JOIN customers.customers c ON c.id = m.id WHERE c.merged_into IS NULL \
             GROUP BY c.id, c.display_name, c.region, c.owner_id, c.core_grams",
        )
        .bind(&points)
        .bind(&p.registration_number)
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let reasons = r
                .kinds
                .iter()
                .filter_map(|k| match k.as_str() {
                    "registration_number" => Some(DuplicateReason::RegistrationNumber),
                    "phone" => Some(DuplicateReason::Phone),
                    "email" => Some(DuplicateReason::Email),
                    _ => None,
                })
                .collect();
            let mut candidate = DuplicateCandidate {
                customer_id: CustomerId(r.id),
                display_name: r.display_name,
                region: r.region,
                owner_id: r.owner_id,
                reasons,
                name_similarity: 0.0,
            };
            // Its name too, so the name lookup below may stop at `limit`.
            let similarity = crm_domain::search::dice(&p.core_grams, &r.core_grams);
            if candidate.region == p.region && similarity >= DUPLICATE_NAME_SIMILARITY {
                candidate.reasons.push(DuplicateReason::SimilarName);
                candidate.name_similarity = similarity;
            }
            found.insert(r.id, candidate);
        }
    }
    if !p.core_grams.is_empty() {
        // Customers of the region sharing enough grams to reach the
        // threshold, counted in the index (Dice = 2·shared / (n + m)), and
        // ranked there, the most similar first: only the top ones are read
        // from the customers table and checked on their real grams. (A name
        // made of a common trade, 电子科技, has thousands of namesakes at
        // the threshold; reading each row cost 130 ms at a million.)
        // Identity matches are ranked first whatever their name, so `limit`
        // more than those found is all the answer can show; a few more are
        // ranked in case a hash collision of regions or grams drops some.
        let rows: Vec<NameRow> = sqlx::query_as(
            "WITH shared AS ( \
               SELECT t.customer_id, (2 * count(*))::float8 / (cardinality($2::text[]) + max(t.grams)) AS dice \
               FROM customers.core_terms t \
               WHERE t.region_h = hashtext($1) \
                 AND t.gram = ANY (ARRAY(SELECT hashtextextended(g, 0) FROM unnest($2::text[]) g)) \
               GROUP BY t.customer_id \
               HAVING (2 * count(*))::float8 >= $3 * (cardinality($2::text[]) + max(t.grams)) \
               ORDER BY dice DESC, t.customer_id LIMIT $4 + 8 \
             ) \
             SELECT c.id, c.display_name, c.region, c.owner_id, c.core_grams FROM shared \
             JOIN customers.customers c ON c.id = shared.customer_id \
             WHERE c.region = $1 AND c.merged_into IS NULL \
             ORDER BY shared.dice DESC, c.id LIMIT $4",
        )
        .bind(&p.region)
        .bind(&p.core_grams)
        // A hair below the threshold: the count is checked again, exactly, below.
        .bind(DUPLICATE_NAME_SIMILARITY - 1e-9)
        .bind(i64::try_from(limit + found.len()).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let similarity = crm_domain::search::dice(&p.core_grams, &r.core_grams);
            if similarity < DUPLICATE_NAME_SIMILARITY {
                continue;
            }
            let entry = found.entry(r.id).or_insert_with(|| DuplicateCandidate {
                customer_id: CustomerId(r.id),
                display_name: r.display_name,
                region: r.region,
                owner_id: r.owner_id,
                reasons: Vec::new(),
                name_similarity: 0.0,
            });
            if !entry.reasons.contains(&DuplicateReason::SimilarName) {
                entry.reasons.push(DuplicateReason::SimilarName);
                entry.name_similarity = similarity;
            }
        }
    }
    let mut out: Vec<DuplicateCandidate> = found.into_values().collect();
    for d in &mut out {
        d.reasons.sort_by_key(|r| reason_rank(*r));
    }
    out.sort_by(|a, b| {
        strength(b)
            .cmp(&strength(a))
            .then(b.name_similarity.total_cmp(&a.name_similarity))
            .then(a.customer_id.0.cmp(&b.customer_id.0))
    });
    out.truncate(limit);
    Ok(out)
}

fn reason_rank(r: DuplicateReason) -> u8 {
    match r {
        DuplicateReason::RegistrationNumber => 0,
        DuplicateReason::Phone => 1,
        DuplicateReason::Email => 2,
        DuplicateReason::SimilarName => 3,
    }
}

/// Identity before similarity: a registration number, then a phone or
/// email, then the number of reasons.
fn strength(d: &DuplicateCandidate) -> (u8, u8, usize) {
    let has = |r| d.reasons.contains(&r);
    (
        u8::from(has(DuplicateReason::RegistrationNumber)),
        u8::from(has(DuplicateReason::Phone) || has(DuplicateReason::Email)),
        d.reasons.len(),
    )
}

/// Re-computes the search terms of up to `limit` customers stored with an
/// older `SEARCH_VERSION` (rows of an earlier release, or written by hand),
/// in one transaction; returns how many. Safe on every replica at once.
pub async fn reindex_batch(pool: &sqlx::PgPool, limit: i64) -> Result<u64> {
    use crate::model::search::{NameTerms, SEARCH_VERSION};
    let mut tx = pool.begin().await?;
    // The version as a literal: the partial index of stale rows
    // (`search_version < 2`, re-created with each bump) is then usable.
    let rows: Vec<(Uuid, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, display_name, legal_name FROM customers.customers WHERE search_version < {SEARCH_VERSION} \
         LIMIT $1 FOR UPDATE SKIP LOCKED"
    )))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (mut ids, mut grams, mut cores, mut name_cores, mut texts) = (vec![], vec![], vec![], vec![], vec![]);
    for (id, display, legal) in &rows {
        let t = NameTerms::of(display, legal);
        ids.push(*id);
        grams.push(t.search_grams.join("\u{1f}"));
        cores.push(t.core_grams.join("\u{1f}"));
        name_cores.push(t.name_core);
        texts.push(t.search_text);
    }
    sqlx::query(
        "UPDATE customers.customers c SET search_grams = string_to_array(t.g, E'\\x1f'), \
         core_grams = string_to_array(t.k, E'\\x1f'), name_core = t.n, search_text = t.s, search_version = $6 \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) AS t(id, g, k, n, s) WHERE c.id = t.id",
    )
    .bind(&ids)
    .bind(&grams)
    .bind(&cores)
    .bind(&name_cores)
    .bind(&texts)
    .bind(SEARCH_VERSION)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Typed pinyin is also a run of Latin word trigrams that no Chinese name
    /// holds; the pinyin terms are looked up even when statistics call them
    /// common and know nothing of the trigrams.
    #[test]
    fn typed_pinyin_looks_up_its_pinyin_terms_before_word_trigrams() {
        let q = SearchQuery::parse("huarunranqi").expect("query");
        let pinyin: Vec<&String> = q.grams.iter().filter(|t| t.starts_with("py:")).collect();
        assert!(!pinyin.is_empty() && q.grams.len() > 2 * MAX_COMMON, "{:?}", q.grams);
        // The real syllable pairs are common; the odd splits unlisted.
        let real = ["py:hua run", "py:run ran", "py:ran qi"];
        let freq = TermFrequencies { search: real.iter().map(|t| (t.to_string(), 0.02)).collect() };
        let looked_up = lookup_terms(&q, &freq);
        assert!(looked_up.len() <= MAX_TERMS);
        for t in real.iter().map(|t| t.to_string()).chain(pinyin.into_iter().cloned()) {
            assert!(looked_up.contains(&t), "{t} missing from {looked_up:?}");
        }
    }

    #[test]
    fn of_the_common_terms_only_the_rarest_are_looked_up() {
        let q = SearchQuery::parse("华润燃气").expect("query");
        let mut freq = TermFrequencies { search: [("燃气".to_string(), 0.03), ("华润".to_string(), 0.001)].into() };
        let looked_up = lookup_terms(&q, &freq);
        let at = |t: &str| looked_up.iter().position(|x| x == t).expect(t);
        assert!(at("华润") < at("燃气") && looked_up.contains(&"润燃".to_string()), "{looked_up:?}");
        assert!(weight(&freq, "润燃") > weight(&freq, "华润") && weight(&freq, "华润") > weight(&freq, "燃气"));
        for (i, t) in q.grams.iter().enumerate() {
            freq.search.insert(t.clone(), 0.01 + i as f64 / 1000.0);
        }
        assert_eq!(lookup_terms(&q, &freq).len(), MAX_COMMON.min(q.grams.len()));
    }
}

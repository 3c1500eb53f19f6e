//! The outcome as the user reads it: the service's counts, and its errors
//! and duplicates named by spreadsheet row and column, with the problems
//! found before sending in place of the unsendable kind they were sent with.

use std::io::{self, Write};

use crm_proto::customers::v1 as pb;

use super::{
    FIRST_ROW,
    book::Plan,
    columns::{COLUMNS, Column, column_of},
};

/// One line of the error list.
#[derive(Debug, PartialEq, Eq)]
pub struct RowError {
    pub row: u64,
    pub field: String,
    pub description: String,
}

/// The service's errors and the problems found here, in row order, and how
/// many there are in all.
pub fn errors(r: &pb::ImportCustomersResponse, plan: &Plan) -> (Vec<RowError>, i64) {
    let kind = Column::Kind.field();
    let mut out: Vec<RowError> = r
        .errors
        .iter()
        .map(|e| (plan.sheet_row(e.row, FIRST_ROW), e))
        // The complaint about the unsendable kind: the problems stand for it.
        .filter(|(row, e)| !(e.field == kind && plan.problems.contains_key(row)))
        .map(|(row, e)| RowError { row, field: shown(&e.field), description: e.description.clone() })
        .collect();
    for (row, problems) in &plan.problems {
        out.extend(problems.iter().map(|p| RowError {
            row: *row,
            field: shown(p.field),
            description: p.description.clone(),
        }));
    }
    // By row, and within a row in the order of the column list.
    out.sort_by_key(|e| (e.row, COLUMNS.iter().position(|c| c.1 == e.field).unwrap_or(COLUMNS.len())));
    // The service counted one error (the kind) for each row with problems.
    let replaced: i64 = plan.problems.values().map(|p| i64::try_from(p.len()).unwrap_or(i64::MAX) - 1).sum();
    (out, r.error_count + replaced)
}

/// A field as the user knows it: its column, else the service's path.
fn shown(field: &str) -> String {
    column_of(field).map_or_else(|| field.to_string(), str::to_string)
}

/// Whether every row was created or settled.
pub fn complete(r: &pb::ImportCustomersResponse) -> bool {
    r.invalid == 0 && r.duplicates == 0
}

pub fn print(
    out: &mut impl Write,
    r: &pb::ImportCustomersResponse,
    plan: &Plan,
    show: usize,
    policy: pb::ImportDuplicatePolicy,
) -> io::Result<()> {
    for (label, n) in [
        ("rows", r.rows),
        ("created", r.created),
        ("invalid", r.invalid),
        ("duplicates", r.duplicates),
        ("already settled", r.already_settled),
    ] {
        writeln!(out, "  {label:<16}{n:>8}")?;
    }
    if plan.blank > 0 {
        writeln!(out, "  {:<16}{:>8}  (skipped)", "blank rows", plan.blank)?;
    }

    let (errors, count) = errors(r, plan);
    if count > 0 {
        writeln!(out, "Errors{}:", heading(errors.len().min(show), count))?;
        for e in errors.iter().take(show) {
            writeln!(out, "  row {}, field {}: {}", e.row, e.field, e.description)?;
        }
    }
    if policy == pb::ImportDuplicatePolicy::Report && r.duplicates > 0 {
        writeln!(out, "Duplicates{}:", heading(r.duplicate_rows.len().min(show), r.duplicates))?;
        for d in r.duplicate_rows.iter().take(show) {
            let reasons: Vec<&str> = d.reasons.iter().map(|&n| reason(n)).collect();
            let same_as = match (d.duplicate_of_row, d.customer_id.as_str()) {
                (0, id) => format!("customer {id}"),
                (row, "") => format!("row {}", plan.sheet_row(row, FIRST_ROW)),
                (row, id) => format!("row {} (customer {id})", plan.sheet_row(row, FIRST_ROW)),
            };
            writeln!(out, "  row {}: same {} as {same_as}", plan.sheet_row(d.row, FIRST_ROW), reasons.join(" and "))?;
        }
    }
    if r.invalid > 0 {
        writeln!(
            out,
            "Rows with errors were not imported: put them, corrected, in a file of their own. A changed file is a \
             new import, and would register again the rows of this one that have no {}, {} or {}.",
            Column::Phone.name(),
            Column::Email.name(),
            Column::RegistrationNumber.name(),
        )?;
    }
    Ok(())
}

/// ` (20 of 35)`, or nothing when all are shown.
fn heading(shown: usize, all: i64) -> String {
    if i64::try_from(shown).is_ok_and(|s| s == all) { String::new() } else { format!(" ({shown} of {all})") }
}

fn reason(n: i32) -> &'static str {
    match pb::DuplicateReason::try_from(n) {
        Ok(pb::DuplicateReason::Phone) => "phone",
        Ok(pb::DuplicateReason::Email) => "email",
        Ok(pb::DuplicateReason::RegistrationNumber) => "registration number",
        Ok(pb::DuplicateReason::SimilarName) => "name",
        _ => "identity",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::columns::Problem;

    #[test]
    fn problems_found_here_replace_the_unsendable_kind_and_rows_are_the_sheets() {
        // Row 3 of the sheet is blank: the service's row 3 is the sheet's 4.
        let mut plan = Plan { rows: vec![2, 4, 5], ..Plan::default() };
        plan.problems.insert(
            4,
            vec![
                Problem { field: "customer.size_band", description: "bad size".into() },
                Problem { field: "customer.collect_time", description: "bad time".into() },
            ],
        );
        let e = |row: i64, field: &str, d: &str| pb::ImportRowError { row, field: field.into(), description: d.into() };
        let r = pb::ImportCustomersResponse {
            errors: vec![
                e(3, "customer.kind", "unknown value -1"),
                e(3, "customer.phone", "bad phone"),
                e(4, "customer.contacts[0].phones[0]", "bad phone"),
            ],
            error_count: 3,
            ..Default::default()
        };
        let (errors, count) = errors(&r, &plan);
        let listed: Vec<(u64, &str)> = errors.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(listed, [(4, "size_band"), (4, "phone"), (4, "collect_time"), (5, "contact_phones")]);
        assert_eq!(count, 4);
    }
}

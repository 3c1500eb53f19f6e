//! A customer book as a CSV file: its header, its rows, and each row's
//! number as a spreadsheet shows it (a cell with line breaks is still one
//! row; a blank line is a row too).

use std::{collections::BTreeMap, io::Read};

use chrono_tz::Tz;
use crm_proto::customers::v1 as pb;

use super::columns::{self, Header, Problem};

/// One record of the file.
pub enum Row {
    /// Every cell empty (spreadsheets leave such rows behind): not sent.
    Blank,
    Customer {
        number: u64,
        customer: Box<pb::Customer>,
        problems: Vec<Problem>,
    },
}

/// The rows of a book, after its header.
pub struct Rows<R> {
    csv: csv::Reader<R>,
    header: Header,
    zone: Tz,
    record: csv::ByteRecord,
    /// The spreadsheet row of the last record read.
    last_row: u64,
}

impl<R: Read> Rows<R> {
    /// Reads the header line. A UTF-8 byte order mark (Excel's "CSV UTF-8"
    /// writes one) is dropped by the csv reader.
    pub fn open(reader: R, zone: Tz) -> Result<Rows<R>, String> {
        let csv = csv::ReaderBuilder::new().has_headers(false).from_reader(reader);
        let mut rows = Rows { csv, header: Header::default(), zone, record: csv::ByteRecord::new(), last_row: 0 };
        let Some((_, names)) = rows.read()? else {
            return Err("the file is empty; it needs a header line naming the columns".into());
        };
        rows.header = Header::parse(names.iter())?;
        Ok(rows)
    }

    /// The next record as text, with its spreadsheet row number.
    fn read(&mut self) -> Result<Option<(u64, csv::StringRecord)>, String> {
        let before = self.csv.position().line();
        let more = self.csv.read_byte_record(&mut self.record).map_err(|e| self.csv_error(&e))?;
        if !more {
            return Ok(None);
        }
        // The reader skips blank lines silently; count them from the lines
        // it went over, less the record's own.
        let consumed = self.csv.position().line() - before;
        let own = 1 + self.record.iter().map(|f| f.iter().filter(|&&b| b == b'\n').count() as u64).sum::<u64>();
        let row = self.last_row + 1 + consumed.saturating_sub(own);
        self.last_row = row;
        let text = csv::StringRecord::from_byte_record(self.record.clone()).map_err(|_| {
            format!(
                "row {row} is not UTF-8 text. Excel's \"CSV (逗号分隔)\" writes GBK: save the sheet as \
                 \"CSV UTF-8 (逗号分隔)\" instead"
            )
        })?;
        Ok(Some((row, text)))
    }

    fn csv_error(&self, e: &csv::Error) -> String {
        let row = self.last_row + 1;
        match e.kind() {
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => format!(
                "row {row} has {len} cells but the header has {expected_len} columns (a cell holding a comma or a \
                 line break must be in double quotes)"
            ),
            _ => format!("row {row}: {e}"),
        }
    }
}

impl<R: Read> Iterator for Rows<R> {
    type Item = Result<Row, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let (number, cells) = match self.read() {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        if cells.iter().all(|c| c.trim().is_empty()) {
            return Some(Ok(Row::Blank));
        }
        let (customer, problems) = columns::customer(&self.header, cells.iter(), self.zone);
        Some(Ok(Row::Customer { number, customer: Box::new(customer), problems }))
    }
}

/// What a first reading of the whole book found, before anything is sent.
#[derive(Debug, Default)]
pub struct Plan {
    /// The spreadsheet row of each customer row, in the order they are sent.
    pub rows: Vec<u64>,
    /// Blank rows, skipped.
    pub blank: u64,
    /// Problems found here, by spreadsheet row.
    pub problems: BTreeMap<u64, Vec<Problem>>,
}

impl Plan {
    /// Reads the whole book; any error that would stop it half way (bad
    /// header, a row that is not UTF-8 or has too few cells) stops it here.
    pub fn read(bytes: &[u8], zone: Tz) -> Result<Plan, String> {
        let mut plan = Plan::default();
        for row in Rows::open(bytes, zone)? {
            match row? {
                Row::Blank => plan.blank += 1,
                Row::Customer { number, problems, .. } => {
                    plan.rows.push(number);
                    if !problems.is_empty() {
                        plan.problems.insert(number, problems);
                    }
                }
            }
        }
        Ok(plan)
    }

    /// The spreadsheet row of a row as the service numbered it (the rows
    /// sent, in order, from `first`).
    pub fn sheet_row(&self, service_row: i64, first: i64) -> u64 {
        usize::try_from(service_row - first)
            .ok()
            .and_then(|i| self.rows.get(i).copied())
            .unwrap_or_else(|| u64::try_from(service_row).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan, String> {
        Plan::read(text.as_bytes(), "Asia/Shanghai".parse().unwrap())
    }

    #[test]
    fn rows_are_numbered_as_a_spreadsheet_shows_them() {
        let p = plan(
            "\u{feff}kind,display_name,summary\n\
             企业,甲,\n\
             \n\
             企业,乙,\"两行\n说明\"\n\
             ,,\n\
             企业,丙,\r\n",
        )
        .unwrap();
        assert_eq!(p.rows, [2, 4, 6]);
        assert_eq!(p.blank, 1);
        assert_eq!(p.sheet_row(3, 2), 4);
    }

    #[test]
    fn what_would_stop_an_import_half_way_stops_it_before_it_starts() {
        assert!(plan("").unwrap_err().contains("empty"));
        let ragged = plan("kind,display_name\n企业,甲\n企业\n").unwrap_err();
        assert!(ragged.starts_with("row 3 has 1 cells but the header has 2 columns"), "{ragged}");
        let gbk = Plan::read(b"kind,display_name\n\xc6\xf3\xd2\xb5,\xbc\xd7\n", "UTC".parse().unwrap()).unwrap_err();
        assert!(gbk.starts_with("row 2 is not UTF-8"), "{gbk}");
    }

    #[test]
    fn cell_problems_are_kept_by_row() {
        let p = plan("kind,display_name\n集体,甲\n企业,乙\n").unwrap();
        assert_eq!(p.problems.keys().copied().collect::<Vec<_>>(), [2]);
        assert_eq!(p.problems[&2][0].field, "customer.kind");
    }
}

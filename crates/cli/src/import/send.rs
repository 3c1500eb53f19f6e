//! What goes on the wire: the import's options, then its rows in messages
//! of `--batch`, and a bar of the rows sent.

use std::{
    io::{IsTerminal, Read},
    time::Duration,
};

use crm_proto::customers::v1 as pb;
use futures_util::Stream;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use prost::Message;

use super::book;

/// Largest message sent, well under the service's 4 MiB request limit
/// whatever `--batch` says.
const MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// The stream of messages (the options, then rows in messages of `batch`),
/// and a future that resolves if the file cannot be read on: the first
/// reading found nothing wrong, so it never should, but a stream that just
/// ended would tell the service the file had ended.
pub fn messages<R: Read + Send + 'static>(
    options: pb::ImportOptions,
    rows: book::Rows<R>,
    batch: usize,
    bar: ProgressBar,
) -> (impl Stream<Item = pb::ImportCustomersRequest> + Send + 'static, impl Future<Output = String>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let sending = Sending { options: Some(options), rows, batch, bar, broken: Some(tx) };
    let stream = futures_util::stream::unfold(sending, |mut s| async move {
        match s.next_message() {
            Some(Ok(m)) => Some((m, s)),
            Some(Err(e)) => {
                if let Some(tx) = s.broken.take() {
                    let _ = tx.send(e);
                }
                std::future::pending().await
            }
            None => {
                // The service is still writing what its buffers hold.
                if !s.bar.is_hidden()
                    && let Ok(style) = ProgressStyle::with_template(
                        "{spinner} all {len} rows sent; the service is writing ({elapsed})",
                    )
                {
                    s.bar.set_style(style);
                    s.bar.enable_steady_tick(Duration::from_millis(200));
                }
                None
            }
        }
    });
    let broken = async move {
        match rx.await {
            Ok(message) => message,
            // The stream ended as it should.
            Err(_) => std::future::pending().await,
        }
    };
    (stream, broken)
}

struct Sending<R> {
    options: Option<pb::ImportOptions>,
    rows: book::Rows<R>,
    batch: usize,
    bar: ProgressBar,
    broken: Option<tokio::sync::oneshot::Sender<String>>,
}

impl<R: Read> Sending<R> {
    fn next_message(&mut self) -> Option<Result<pb::ImportCustomersRequest, String>> {
        if let Some(options) = self.options.take() {
            return Some(Ok(pb::ImportCustomersRequest { options: Some(options), customers: Vec::new() }));
        }
        let mut customers = Vec::with_capacity(self.batch);
        let mut size = 0;
        while customers.len() < self.batch && size < MAX_MESSAGE_BYTES {
            match self.rows.next() {
                None => break,
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(book::Row::Blank)) => {}
                Some(Ok(book::Row::Customer { customer, .. })) => {
                    size += customer.encoded_len() + 8;
                    customers.push(*customer);
                }
            }
        }
        if customers.is_empty() {
            return None;
        }
        self.bar.inc(u64::try_from(customers.len()).unwrap_or(0));
        Some(Ok(pb::ImportCustomersRequest { options: None, customers }))
    }
}

/// Rows sent of all rows, on stderr when it is a terminal.
pub fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{wide_bar} {pos}/{len} rows sent, {rate} rows/s, {eta} left") {
        bar.set_style(style.with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}", s.per_sec());
        }));
    }
    bar
}

#[cfg(test)]
mod tests {
    use chrono_tz::Tz;

    use super::*;

    #[test]
    fn rows_go_in_messages_of_batch_after_the_options() {
        let sizes = |batch: usize| {
            let csv = "kind,display_name\n企业,甲\n,\n企业,乙\n企业,丙\n";
            let rows = book::Rows::open(csv.as_bytes(), Tz::UTC).unwrap();
            let options = pb::ImportOptions::default();
            let mut s = Sending { options: Some(options), rows, batch, bar: ProgressBar::hidden(), broken: None };
            std::iter::from_fn(|| s.next_message().map(Result::unwrap))
                .map(|m| (m.options.is_some(), m.customers.len()))
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(500), [(true, 0), (false, 3)]);
        assert_eq!(sizes(2), [(true, 0), (false, 2), (false, 1)]);
        assert_eq!(sizes(1), [(true, 0), (false, 1), (false, 1), (false, 1)]);
    }
}

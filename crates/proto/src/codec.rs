//! The codec of every crm gRPC service and client: prost encoding, with two
//! differences from `tonic_prost::ProstCodec` that make the edge honest.
//!
//! - A body that does not decode is the sender's mistake: INVALID_ARGUMENT,
//!   not the INTERNAL that tonic-prost answers.
//! - Every decoded message passes its generated edge checks (`build.rs`):
//!   text without NUL bytes or control characters other than tab and line
//!   breaks, timestamps inside protobuf's documented range (years 1–9999,
//!   nanos 0..1e9), calendar dates that exist. A violation is INVALID_ARGUMENT
//!   naming every bad field (`customer.contacts[1].phones[0]`), so such input
//!   never reaches a handler or Postgres, which would refuse it as an error
//!   of ours.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// Checks of what arrives, generated for every crm message.
pub trait EdgeCheck {
    /// Appends `(field path, reason)` for every bad field under `path`.
    fn edge_check(&self, path: &mut String, out: &mut Vec<(String, String)>);
}

/// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range of
/// `google.protobuf.Timestamp` (and of what Postgres and chrono both hold).
pub const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
pub const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// Reports at most this many violations of one message: a hostile message
/// with a million bad strings gets a bounded answer.
const MAX_VIOLATIONS: usize = 20;

impl EdgeCheck for prost_types::Timestamp {
    fn edge_check(&self, path: &mut String, out: &mut Vec<(String, String)>) {
        if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&self.seconds) {
            push(out, path, "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z");
        } else if !(0..1_000_000_000).contains(&self.nanos) {
            push(out, path, "nanos must be between 0 and 999999999");
        }
    }
}

impl EdgeCheck for prost_types::FieldMask {
    fn edge_check(&self, path: &mut String, out: &mut Vec<(String, String)>) {
        for (i, p) in self.paths.iter().enumerate() {
            check_text_at(path, "paths", i, p, out);
        }
    }
}

/// `crm.common.v1.Date`: a day that exists, in years 1–9999.
#[doc(hidden)]
pub fn check_date(year: i32, month: i32, day: i32, path: &mut String, out: &mut Vec<(String, String)>) {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    if !(1..=9999).contains(&year) || days == 0 || !(1..=days).contains(&day) {
        push(out, path, "must be a calendar date between 0001-01-01 and 9999-12-31");
    }
}

fn push(out: &mut Vec<(String, String)>, path: &str, reason: &str) {
    if out.len() < MAX_VIOLATIONS {
        out.push((path.to_string(), reason.to_string()));
    }
}

/// Whether `s` holds a character no text field accepts: NUL (which Postgres
/// cannot store) and the other C0 controls except tab, CR and LF.
pub fn has_forbidden_control(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r')
}

const TEXT_REASON: &str = "must not contain NUL bytes or control characters";

fn with_segment(path: &mut String, name: &str, index: Option<usize>, f: impl FnOnce(&mut String)) {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
    if let Some(i) = index {
        path.push('[');
        path.push_str(&i.to_string());
        path.push(']');
    }
    f(path);
    path.truncate(len);
}

#[doc(hidden)]
pub fn check_text(path: &mut String, name: &str, value: &str, out: &mut Vec<(String, String)>) {
    if has_forbidden_control(value) {
        with_segment(path, name, None, |p| push(out, p, TEXT_REASON));
    }
}

#[doc(hidden)]
pub fn check_text_at(path: &mut String, name: &str, index: usize, value: &str, out: &mut Vec<(String, String)>) {
    if has_forbidden_control(value) {
        with_segment(path, name, Some(index), |p| push(out, p, TEXT_REASON));
    }
}

#[doc(hidden)]
pub fn nested<M: EdgeCheck>(
    path: &mut String,
    name: &str,
    index: Option<usize>,
    value: &M,
    out: &mut Vec<(String, String)>,
) {
    if out.len() >= MAX_VIOLATIONS {
        return;
    }
    with_segment(path, name, index, |p| value.edge_check(p, out));
}

/// The violations of a decoded message, if any, as INVALID_ARGUMENT with a
/// `BadRequest` listing each field.
pub fn check<M: EdgeCheck>(m: &M) -> Result<(), Status> {
    let mut out = Vec::new();
    m.edge_check(&mut String::new(), &mut out);
    if out.is_empty() {
        return Ok(());
    }
    let message = out.iter().map(|(f, r)| format!("{f}: {r}")).collect::<Vec<_>>().join("; ");
    let violations = out.into_iter().map(|(f, r)| FieldViolation::new(f, r)).collect::<Vec<_>>();
    Err(Status::with_error_details(Code::InvalidArgument, message, ErrorDetails::with_bad_request(violations)))
}

/// `ProstCodec` with INVALID_ARGUMENT for undecodable bodies and the edge
/// checks on every decoded message.
#[derive(Debug, Clone)]
pub struct CheckedCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for CheckedCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for CheckedCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + EdgeCheck + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = CheckedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        CheckedDecoder(PhantomData)
    }
}

#[derive(Debug, Clone, Default)]
pub struct CheckedDecoder<U>(PhantomData<U>);

impl<U: Message + Default + EdgeCheck> Decoder for CheckedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let item = U::decode(buf).map_err(|e| {
            Status::with_error_details(
                Code::InvalidArgument,
                format!("the message does not decode as protobuf: {e}"),
                ErrorDetails::with_error_info("UNDECODABLE_MESSAGE", "crm", std::collections::HashMap::new()),
            )
        })?;
        check(&item)?;
        Ok(Some(item))
    }
}

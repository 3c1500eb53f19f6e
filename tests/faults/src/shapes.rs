//! Requests shaped like the real thing, generated from the descriptor set:
//! every field of the method's input message (nested messages, repeated
//! fields, maps, oneofs) encoded by hand on the wire, with values chosen to
//! hurt — NUL and control characters, huge strings, emoji and full-width
//! digits, invalid UTF-8, extreme integers, timestamps at ±2^40 s with
//! nanos out of range, impossible dates, unknown enum values, empty
//! required fields, ids that exist, random UUIDs and non-UUIDs. Or, in
//! plausible mode, values a real client would send (known ids, valid enums,
//! small numbers, dates that exist), so calls get past validation into the
//! handlers and the database, where an INTERNAL would come from.

use std::collections::HashMap;

use prost::Message;
use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};

use crate::{Error, rng::Rng};

/// One method of a served service.
#[derive(Debug, Clone)]
pub struct Method {
    /// `/crm.billing.v1.BillingService/RecordPayment`
    pub path: String,
    pub name: String,
    /// Fully-qualified input type, with a leading dot.
    pub input: String,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

/// Message and enum types by full name, and the methods of each service.
pub struct Schema {
    messages: HashMap<String, DescriptorProto>,
    enums: HashMap<String, Vec<i32>>,
    services: HashMap<String, Vec<Method>>,
}

impl Schema {
    pub fn load(encoded: &[u8]) -> Result<Schema, Error> {
        let set = FileDescriptorSet::decode(encoded)?;
        let mut s = Schema { messages: HashMap::new(), enums: HashMap::new(), services: HashMap::new() };
        for file in &set.file {
            let scope = if file.package().is_empty() { String::new() } else { format!(".{}", file.package()) };
            for m in &file.message_type {
                s.add_message(&scope, m);
            }
            for e in &file.enum_type {
                s.enums.insert(format!("{scope}.{}", e.name()), e.value.iter().map(|v| v.number()).collect());
            }
            for svc in &file.service {
                let full = format!("{}.{}", file.package(), svc.name());
                let methods = svc
                    .method
                    .iter()
                    .map(|m| Method {
                        path: format!("/{full}/{}", m.name()),
                        name: m.name().to_string(),
                        input: m.input_type().to_string(),
                        client_streaming: m.client_streaming(),
                        server_streaming: m.server_streaming(),
                    })
                    .collect();
                s.services.insert(full, methods);
            }
        }
        Ok(s)
    }

    fn add_message(&mut self, scope: &str, m: &DescriptorProto) {
        let name = format!("{scope}.{}", m.name());
        for nested in &m.nested_type {
            self.add_message(&name, nested);
        }
        for e in &m.enum_type {
            self.enums.insert(format!("{name}.{}", e.name()), e.value.iter().map(|v| v.number()).collect());
        }
        self.messages.insert(name, m.clone());
    }

    /// The methods of a fully-qualified service name.
    pub fn methods(&self, service: &str) -> Vec<Method> {
        self.services.get(service).cloned().unwrap_or_default()
    }

    /// Whether a method's input carries a `request_id` (it mutates).
    pub fn mutates(&self, method: &Method) -> bool {
        self.messages.get(&method.input).is_some_and(|m| m.field.iter().any(|f| f.name() == "request_id"))
    }
}

/// Ids that exist, to get past "not found" into the handlers.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub ids: Vec<String>,
}

/// Builds one request body for `input`.
pub struct Generator<'a> {
    pub schema: &'a Schema,
    pub known: &'a Known,
    pub rng: Rng,
    /// Values a real client would send instead of hostile ones.
    pub plausible: bool,
}

const MAX_DEPTH: u32 = 4;

impl Generator<'_> {
    pub fn message(&mut self, type_name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_message(type_name, 0, &mut out);
        out
    }

    fn encode_message(&mut self, type_name: &str, depth: u32, out: &mut Vec<u8>) {
        match type_name {
            ".google.protobuf.Duration" if self.plausible => {
                key(1, 0, out);
                varint(60 + self.rng.below(86_400), out);
                return;
            }
            ".google.protobuf.Timestamp" | ".google.protobuf.Duration" => return self.timestamp(out),
            ".crm.common.v1.Date" | ".google.type.Date" => return self.date(out),
            _ => {}
        }
        let Some(m) = self.schema.messages.get(type_name).cloned() else { return };
        // One member of each oneof (proto3 optional fields are oneofs of one).
        let mut oneof_pick: HashMap<i32, i32> = HashMap::new();
        for f in &m.field {
            if let Some(i) = f.oneof_index {
                let members: Vec<i32> =
                    m.field.iter().filter(|g| g.oneof_index == Some(i)).map(|g| g.number()).collect();
                if !oneof_pick.contains_key(&i)
                    && let Some(n) = self.rng.pick(&members)
                {
                    oneof_pick.insert(i, *n);
                }
            }
        }
        let keep = match (self.plausible, depth) {
            (true, 0) => 0.97,
            (true, _) => 0.85,
            (false, 0) => 0.85,
            (false, 1) => 0.7,
            _ => 0.5,
        };
        for f in &m.field {
            if let Some(i) = f.oneof_index
                && oneof_pick.get(&i) != Some(&f.number())
            {
                continue;
            }
            if !self.rng.chance(keep) {
                continue;
            }
            let repeated = f.label() == Label::Repeated;
            let count = if !repeated {
                1
            } else if self.plausible {
                1 + self.rng.below(2) as usize
            } else if self.rng.chance(0.02) {
                // A long list, as a bulk client might send.
                200 + self.rng.below(800) as usize
            } else {
                self.rng.below(4) as usize
            };
            for _ in 0..count {
                self.field(f, depth, out);
            }
        }
        // Now and then a field this message does not have.
        if !self.plausible && self.rng.chance(0.05) {
            let number = 1000 + self.rng.below(5000) as u32;
            key(number, 2, out);
            let len = self.rng.below(16) as usize;
            let junk = self.rng.bytes(len);
            bytes_value(&junk, out);
        }
    }

    fn field(&mut self, f: &FieldDescriptorProto, depth: u32, out: &mut Vec<u8>) {
        if self.plausible && self.plausible_field(f, out) {
            return;
        }
        let n = f.number() as u32;
        match f.r#type() {
            Type::String => {
                key(n, 2, out);
                let s = self.string(f.name());
                bytes_value(&s, out);
            }
            Type::Bytes => {
                key(n, 2, out);
                let len = self.rng.below(64) as usize;
                let b = self.rng.bytes(len);
                bytes_value(&b, out);
            }
            Type::Message => {
                if depth >= MAX_DEPTH {
                    return;
                }
                key(n, 2, out);
                let mut inner = Vec::new();
                self.encode_message(f.type_name(), depth + 1, &mut inner);
                bytes_value(&inner, out);
            }
            Type::Enum => {
                key(n, 0, out);
                let values = self.schema.enums.get(f.type_name()).cloned().unwrap_or_default();
                let v = if self.rng.chance(0.65) {
                    self.rng.pick(&values).copied().unwrap_or(0)
                } else if self.rng.chance(0.4) {
                    0
                } else {
                    *self.rng.pick(&[-1, 99, 1000, i32::MAX, i32::MIN]).unwrap_or(&99)
                };
                varint(v as i64 as u64, out);
            }
            Type::Bool => {
                key(n, 0, out);
                varint(if self.rng.chance(0.1) { 2 + self.rng.below(1000) } else { self.rng.below(2) }, out);
            }
            Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 => {
                key(n, 0, out);
                varint(self.integer() as u64, out);
            }
            Type::Sint32 | Type::Sint64 => {
                key(n, 0, out);
                let v = self.integer();
                varint(((v << 1) ^ (v >> 63)) as u64, out);
            }
            Type::Fixed64 | Type::Sfixed64 | Type::Double => {
                key(n, 1, out);
                let v = if f.r#type() == Type::Double { self.double().to_bits() } else { self.integer() as u64 };
                out.extend_from_slice(&v.to_le_bytes());
            }
            Type::Fixed32 | Type::Sfixed32 | Type::Float => {
                key(n, 5, out);
                let v =
                    if f.r#type() == Type::Float { (self.double() as f32).to_bits() } else { self.integer() as u32 };
                out.extend_from_slice(&v.to_le_bytes());
            }
            Type::Group => {}
        }
    }

    fn integer(&mut self) -> i64 {
        match self.rng.below(10) {
            0 => 0,
            1 => -1,
            2 => *self
                .rng
                .pick(&[i64::MAX, i64::MIN, i32::MAX as i64, i32::MIN as i64, 1 << 40, -(1 << 40)])
                .unwrap_or(&0),
            3 => self.rng.next_u64() as i64,
            4 => -(self.rng.below(1_000_000) as i64),
            _ => self.rng.below(10_000) as i64,
        }
    }

    fn double(&mut self) -> f64 {
        *self.rng.pick(&[0.0, -1.0, 1e300, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.5, 123.456]).unwrap_or(&0.0)
    }

    /// Scalars a real client would send; false for messages and bytes,
    /// which take the general path.
    fn plausible_field(&mut self, f: &FieldDescriptorProto, out: &mut Vec<u8>) -> bool {
        let n = f.number() as u32;
        match f.r#type() {
            Type::String => {
                key(n, 2, out);
                let s = self.plausible_string(f.name());
                bytes_value(s.as_bytes(), out);
            }
            Type::Enum => {
                key(n, 0, out);
                let values = self.schema.enums.get(f.type_name()).cloned().unwrap_or_default();
                let set: Vec<i32> = values.into_iter().filter(|v| *v != 0).collect();
                varint(self.rng.pick(&set).copied().unwrap_or(1) as i64 as u64, out);
            }
            Type::Bool => {
                key(n, 0, out);
                varint(self.rng.below(2), out);
            }
            Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Sint32 | Type::Sint64 => {
                key(n, 0, out);
                let v = 1 + self.rng.below(if f.name().contains("minor") { 100_000 } else { 50 });
                let v = if matches!(f.r#type(), Type::Sint32 | Type::Sint64) { v << 1 } else { v };
                varint(v, out);
            }
            Type::Double | Type::Float | Type::Fixed32 | Type::Fixed64 | Type::Sfixed32 | Type::Sfixed64 => {
                return false;
            }
            _ => return false,
        }
        true
    }

    fn plausible_string(&mut self, name: &str) -> String {
        let is_id = name == "id" || name.ends_with("_id") || name.ends_with("_ids");
        if name == "request_id" {
            return uuid::Uuid::new_v4().to_string();
        }
        if is_id {
            return if self.rng.chance(0.85) {
                self.rng.pick(&self.known.ids).cloned().unwrap_or_default()
            } else {
                uuid::Uuid::now_v7().to_string()
            };
        }
        let fixed: Option<&[&str]> = match name {
            "etag" => Some(&["", "1", "2", "3"]),
            "page_token" | "next_page_token" => Some(&[""]),
            "currency_code" => Some(&["CNY"]),
            "region" => Some(&["CN-BJ", "CN-SH"]),
            "province" | "city" => Some(&["北京市"]),
            "district" => Some(&["朝阳区"]),
            "street" | "site_address" => Some(&["建国路 1 号"]),
            "postal_code" => Some(&["100020"]),
            "branch" => Some(&["bj"]),
            "territory" => Some(&["north"]),
            "department" => Some(&["field-north", "lab-chem"]),
            "email" => Some(&["ops@example.com"]),
            "period" => Some(&["2026-11", "2026-12"]),
            "series" => Some(&["A"]),
            "query" => Some(&["北京", "燃气", "bj"]),
            _ => None,
        };
        if let Some(values) = fixed {
            return self.rng.pick(values).copied().unwrap_or("").to_string();
        }
        if name.contains("phone") {
            return self.rng.pick(&["13800138000", "010-65521234"]).copied().unwrap_or("13800138000").to_string();
        }
        if name.contains("skill") {
            return "gps".into();
        }
        if name.contains("number") || name.contains("serial") || name.contains("code") || name.contains("plate") {
            return format!("FT{}", 100_000 + self.rng.below(900_000));
        }
        format!("故障演练{}", self.rng.below(1000))
    }

    /// Timestamps (and durations): seconds and nanos in and out of range.
    fn timestamp(&mut self, out: &mut Vec<u8>) {
        if self.plausible {
            // Within a month of 2026-12-01.
            let seconds = 1_764_547_200 - 30 * 86_400 + self.rng.below(60 * 86_400) as i64;
            key(1, 0, out);
            varint(seconds as u64, out);
            return;
        }
        let seconds: i64 = *self
            .rng
            .pick(&[
                1 << 40,
                -(1 << 40),
                0,
                1_800_000_000,
                1_764_000_000,
                -62_135_596_800,
                -62_135_596_801,
                253_402_300_799,
                253_402_300_800,
                i64::MAX,
                i64::MIN,
            ])
            .unwrap_or(&0);
        let nanos: i32 = *self.rng.pick(&[0, -1, 1_000_000_000, 999_999_999, i32::MAX, i32::MIN, 500]).unwrap_or(&0);
        if self.rng.chance(0.9) {
            key(1, 0, out);
            varint(seconds as u64, out);
        }
        if self.rng.chance(0.6) {
            key(2, 0, out);
            varint(nanos as i64 as u64, out);
        }
    }

    /// Dates: real ones and impossible ones.
    fn date(&mut self, out: &mut Vec<u8>) {
        if self.plausible {
            let (year, month) = *self.rng.pick(&[(2026, 11), (2026, 12), (2027, 1)]).unwrap_or(&(2026, 12));
            let day = 1 + self.rng.below(28);
            for (n, v) in [(1, year), (2, month), (3, day as i32)] {
                key(n, 0, out);
                varint(v as u64, out);
            }
            return;
        }
        let year: i32 = *self.rng.pick(&[2026, 2025, 2027, 0, -1, 1, 9999, 10000, i32::MAX, i32::MIN]).unwrap_or(&2026);
        let month: i32 = *self.rng.pick(&[1, 2, 6, 12, 0, 13, -1, i32::MAX]).unwrap_or(&1);
        let day: i32 = *self.rng.pick(&[1, 15, 28, 29, 30, 31, 0, 32, -1, i32::MIN]).unwrap_or(&1);
        for (n, v) in [(1, year), (2, month), (3, day)] {
            if self.rng.chance(0.9) {
                key(n, 0, out);
                varint(v as i64 as u64, out);
            }
        }
    }

    /// A string for a field named `name`: plausible for its name most of the
    /// time, hostile otherwise.
    fn string(&mut self, name: &str) -> Vec<u8> {
        let is_id = name == "id" || name.ends_with("_id") || name.ends_with("_ids");
        if name == "request_id" && self.rng.chance(0.85) {
            return uuid::Uuid::new_v4().to_string().into_bytes();
        }
        if is_id && self.rng.chance(0.6) {
            return match self.rng.below(3) {
                0 | 1 => self.rng.pick(&self.known.ids).cloned().unwrap_or_default().into_bytes(),
                _ => uuid::Uuid::now_v7().to_string().into_bytes(),
            };
        }
        if name == "currency_code" && self.rng.chance(0.6) {
            return self.rng.pick(&["CNY", "USD", "cny", "XXXX", ""]).copied().unwrap_or("CNY").as_bytes().to_vec();
        }
        if name == "page_token" && self.rng.chance(0.5) {
            return self
                .rng
                .pick(&["", "AAAA", "eyJ4IjoxfQ", "%%%", "\u{0}"])
                .copied()
                .unwrap_or("")
                .as_bytes()
                .to_vec();
        }
        self.hostile()
    }

    fn hostile(&mut self) -> Vec<u8> {
        const SAMPLES: &[&str] = &[
            "",
            " ",
            "北京燃气集团有限公司",
            "张三",
            "a\u{0}b",
            "\u{1}\u{2}\u{1b}[31m\u{7f}",
            "line\nbreak\ttab\r",
            "😀🔥👨‍👩‍👧‍👦",
            "１２３４５６７８９０",
            "+86 10 6552 1234",
            "010-65521234 ext. 9",
            "a@b.c",
            "'; DROP TABLE customers; --",
            "%_\\",
            "\u{202e}evil\u{202d}",
            "e\u{301}\u{301}\u{301}",
            "CN-BJ",
            "bj",
            "lab-chem",
            "gps",
            "north",
            "SVC",
            "not-a-uuid",
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "2026-02-30",
            "NaN",
            "-0",
            "9223372036854775808",
            "\u{feff}BOM",
            "\u{fffd}",
        ];
        match self.rng.below(20) {
            // Invalid UTF-8 in a string field.
            0 => vec![0xff, 0xfe, b'a', 0xc3],
            // Huge: 64 KB to 1 MB.
            1 if self.rng.chance(0.1) => {
                let len = 65_536 + self.rng.below(1 << 20) as usize;
                "字".repeat(len / 3).into_bytes()
            }
            2 => {
                let len = 256 + self.rng.below(8192) as usize;
                let c = self.rng.pick(&["a", "字", "😀", "\u{0}", " "]).copied().unwrap_or("a");
                c.repeat(len).into_bytes()
            }
            3 => {
                let len = self.rng.below(40) as usize;
                self.rng.bytes(len).iter().map(|b| b & 0x7f).collect()
            }
            _ => self.rng.pick(SAMPLES).copied().unwrap_or("").as_bytes().to_vec(),
        }
    }
}

fn key(number: u32, wire_type: u32, out: &mut Vec<u8>) {
    varint(u64::from((number << 3) | wire_type), out);
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_value(b: &[u8], out: &mut Vec<u8>) {
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// Damages an encoded message: flipped bytes, a cut, junk appended, or a
/// length prefix that lies.
pub fn mutate(rng: &mut Rng, mut body: Vec<u8>) -> Vec<u8> {
    match rng.below(4) {
        0 if !body.is_empty() => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.index(body.len());
                body[i] ^= 1 << rng.below(8);
            }
        }
        1 if !body.is_empty() => {
            let cut = rng.index(body.len());
            body.truncate(cut);
        }
        2 => {
            let len = 1 + rng.below(16) as usize;
            let junk = rng.bytes(len);
            body.extend_from_slice(&junk);
        }
        _ => {
            // A length-delimited field claiming far more than follows.
            body.extend_from_slice(&[0x0a, 0xff, 0xff, 0xff, 0x0f, b'x']);
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use crm_proto::{billing::v1 as bpb, complaints::v1 as cpb, customers::v1 as kpb, dispatch::v1 as dpb};

    use super::*;

    fn schema() -> Schema {
        match Schema::load(crm_proto::FILE_DESCRIPTOR_SET) {
            Ok(s) => s,
            Err(e) => panic!("descriptor set: {e}"),
        }
    }

    #[test]
    fn every_service_has_methods_and_mutating_ones_are_found() {
        let s = schema();
        for (_, service) in crate::system::SERVICES {
            let methods = s.methods(service);
            assert!(!methods.is_empty(), "{service}");
            assert!(methods.iter().any(|m| s.mutates(m)), "{service}");
        }
    }

    /// Plausible messages are well-formed protobuf of the method's input
    /// type (the generated types decode them), so plausible calls test the
    /// handlers, not the decoder.
    #[test]
    fn plausible_messages_decode_as_their_type() {
        let s = schema();
        let known = Known { ids: vec![uuid::Uuid::nil().to_string()] };
        let mut g = Generator { schema: &s, known: &known, rng: Rng::new(7), plausible: true };
        for _ in 0..200 {
            let body = g.message(".crm.customers.v1.CreateCustomerRequest");
            assert!(kpb::CreateCustomerRequest::decode(body.as_slice()).is_ok());
            let body = g.message(".crm.complaints.v1.RegisterComplaintRequest");
            assert!(cpb::RegisterComplaintRequest::decode(body.as_slice()).is_ok());
            let body = g.message(".crm.dispatch.v1.CreateWorkOrderRequest");
            assert!(dpb::CreateWorkOrderRequest::decode(body.as_slice()).is_ok());
            let body = g.message(".crm.billing.v1.RecordPaymentRequest");
            let req = bpb::RecordPaymentRequest::decode(body.as_slice());
            // Fields may be left out (proto3: zero, empty), but not be hostile.
            let plausible = |m: &crm_proto::common::v1::Money| {
                m.amount_minor >= 0 && (m.currency_code.is_empty() || m.currency_code == "CNY")
            };
            assert!(req.is_ok_and(|r| r.amount.as_ref().is_none_or(plausible)));
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_messages() {
        let s = schema();
        let known = Known::default();
        let mut a = Generator { schema: &s, known: &known, rng: Rng::new(42), plausible: false };
        let mut b = Generator { schema: &s, known: &known, rng: Rng::new(42), plausible: false };
        for _ in 0..50 {
            // A message without ids or request ids (those are fresh UUIDs).
            let (x, y) =
                (a.message(".crm.billing.v1.ListTariffsRequest"), b.message(".crm.billing.v1.ListTariffsRequest"));
            assert_eq!(x, y);
        }
    }
}

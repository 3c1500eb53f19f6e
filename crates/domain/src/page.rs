//! Keyset pagination: an opaque page token carrying the last key returned and
//! a fingerprint of the filter it was issued for, so that a token cannot be
//! replayed against a different query. Keys are UUIDv7 ids, so "after the
//! last id" is stable while rows are inserted between pages.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use crate::Invalid;

const VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    pub after: Uuid,
    pub filter: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageTokenError {
    #[error("page_token is not a token this server issued")]
    Malformed,
    #[error("page_token was issued for a different filter")]
    FilterChanged,
}

impl PageToken {
    pub fn encode(&self) -> String {
        let mut buf = Vec::with_capacity(25);
        buf.push(VERSION);
        buf.extend_from_slice(self.after.as_bytes());
        buf.extend_from_slice(&self.filter.to_be_bytes());
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// Decodes a token and checks it belongs to a query with fingerprint
    /// `filter`. An empty string means "first page".
    pub fn decode(token: &str, filter: u64) -> Result<Option<PageToken>, PageTokenError> {
        if token.is_empty() {
            return Ok(None);
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| PageTokenError::Malformed)?;
        if bytes.len() != 25 || bytes[0] != VERSION {
            return Err(PageTokenError::Malformed);
        }
        let after = Uuid::from_slice(&bytes[1..17]).map_err(|_| PageTokenError::Malformed)?;
        let mut f = [0u8; 8];
        f.copy_from_slice(&bytes[17..25]);
        let tok = PageToken { after, filter: u64::from_be_bytes(f) };
        if tok.filter != filter {
            return Err(PageTokenError::FilterChanged);
        }
        Ok(Some(tok))
    }
}

const RANKED_VERSION: u8 = 2;

/// The page token of a ranked list (search hits, best first, ties by id):
/// the last hit's score and id, and the query's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedPageToken {
    pub score: f64,
    pub after: Uuid,
    pub filter: u64,
}

impl RankedPageToken {
    pub fn encode(&self) -> String {
        let mut buf = Vec::with_capacity(33);
        buf.push(RANKED_VERSION);
        buf.extend_from_slice(&self.score.to_bits().to_be_bytes());
        buf.extend_from_slice(self.after.as_bytes());
        buf.extend_from_slice(&self.filter.to_be_bytes());
        URL_SAFE_NO_PAD.encode(buf)
    }

    pub fn decode(token: &str, filter: u64) -> Result<Option<RankedPageToken>, PageTokenError> {
        if token.is_empty() {
            return Ok(None);
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| PageTokenError::Malformed)?;
        if bytes.len() != 33 || bytes[0] != RANKED_VERSION {
            return Err(PageTokenError::Malformed);
        }
        let mut s = [0u8; 8];
        s.copy_from_slice(&bytes[1..9]);
        let score = f64::from_bits(u64::from_be_bytes(s));
        if !score.is_finite() {
            return Err(PageTokenError::Malformed);
        }
        let after = Uuid::from_slice(&bytes[9..25]).map_err(|_| PageTokenError::Malformed)?;
        let mut f = [0u8; 8];
        f.copy_from_slice(&bytes[25..33]);
        let tok = RankedPageToken { score, after, filter: u64::from_be_bytes(f) };
        if tok.filter != filter {
            return Err(PageTokenError::FilterChanged);
        }
        Ok(Some(tok))
    }

    /// Whether a hit ranks after this token's position (lower score, or
    /// the same score and a higher id).
    pub fn precedes(&self, score: f64, id: Uuid) -> bool {
        score < self.score || (score == self.score && id > self.after)
    }
}

/// A stable fingerprint (FNV-1a, 64-bit) of the parts of a query's filter.
/// Stable across processes and releases, unlike `std`'s hasher.
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(std::iter::once(&0xFFu8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A validated page size (AIP-158): 0 means the default, negative is an
/// error, anything above the maximum is lowered to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(pub u32);

impl PageSize {
    pub fn parse(requested: i32, default: u32, max: u32) -> Result<Self, Invalid> {
        match requested {
            n if n < 0 => Err(Invalid::new("must not be negative")),
            0 => Ok(PageSize(default.min(max))),
            n => Ok(PageSize(n.unsigned_abs().min(max))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranked_tokens_round_trip_and_refuse_another_query() {
        let t = RankedPageToken { score: 0.8125, after: Uuid::now_v7(), filter: 42 };
        assert_eq!(RankedPageToken::decode(&t.encode(), 42), Ok(Some(t)));
        assert_eq!(RankedPageToken::decode(&t.encode(), 43), Err(PageTokenError::FilterChanged));
        assert_eq!(RankedPageToken::decode("AAAA", 42), Err(PageTokenError::Malformed));
        assert!(t.precedes(0.5, Uuid::nil()));
        assert!(!t.precedes(0.9, Uuid::max()));
        assert!(t.precedes(0.8125, Uuid::max()) && !t.precedes(0.8125, Uuid::nil()));
    }

    #[test]
    fn empty_token_is_the_first_page() {
        assert_eq!(PageToken::decode("", 7), Ok(None));
    }

    #[test]
    fn garbage_and_foreign_filters_are_refused() {
        assert_eq!(PageToken::decode("!!", 1), Err(PageTokenError::Malformed));
        assert_eq!(PageToken::decode("AAAA", 1), Err(PageTokenError::Malformed));
        let t = PageToken { after: Uuid::now_v7(), filter: 1 }.encode();
        assert_eq!(PageToken::decode(&t, 2), Err(PageTokenError::FilterChanged));
    }

    #[test]
    fn page_size_defaults_and_caps() {
        assert_eq!(PageSize::parse(0, 50, 1000), Ok(PageSize(50)));
        assert_eq!(PageSize::parse(5000, 50, 1000), Ok(PageSize(1000)));
        assert_eq!(PageSize::parse(7, 50, 1000), Ok(PageSize(7)));
        assert!(PageSize::parse(-1, 50, 1000).is_err());
    }

    #[test]
    fn fingerprint_separates_parts() {
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
        assert_eq!(fingerprint(&[b"x"]), fingerprint(&[b"x"]));
    }

    proptest! {
        #[test]
        fn tokens_round_trip(bytes in proptest::array::uniform16(any::<u8>()), filter in any::<u64>()) {
            let t = PageToken { after: Uuid::from_bytes(bytes), filter };
            prop_assert_eq!(PageToken::decode(&t.encode(), filter), Ok(Some(t)));
        }

        #[test]
        fn decode_never_panics(s in "\\PC{0,60}", filter in any::<u64>()) {
            let _ = PageToken::decode(&s, filter);
        }
    }
}

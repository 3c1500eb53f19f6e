//! The edge kit every service's api uses: the service trait wired to the
//! handlers (`grpc_service!`), protobuf enums ⇄ model vocabularies
//! (`enum_map!`), required enums; with `Violations::finish_with` (in
//! `error`) and `fresh_or_replay!` (in `idempotency`).

pub use crm_domain::Invalid;

/// A required enum: UNSPECIFIED (or nothing) is rejected.
pub fn required<T>(r: Result<Option<T>, Invalid>) -> Result<T, Invalid> {
    r?.ok_or_else(|| Invalid::new("is required (UNSPECIFIED is not a value)"))
}

/// One page of a keyset-paginated List (AIP-158): the validated size, where
/// the previous page ended and the fingerprint of the list's filter (a token
/// is refused for another filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows on this page; the store fetches one more to know whether a next
    /// page exists.
    pub size: u32,
    /// The key of the last row of the previous page.
    pub after: Option<uuid::Uuid>,
    fingerprint: u64,
}

impl Page {
    /// Reads `page_size` (0: `default`; above `max`: `max`; negative:
    /// INVALID_ARGUMENT) and `page_token` (issued for `fingerprint`, else
    /// INVALID_ARGUMENT).
    pub fn parse(
        page_size: i32,
        page_token: &str,
        default: u32,
        max: u32,
        fingerprint: u64,
    ) -> Result<Page, tonic::Status> {
        let size = crm_domain::PageSize::parse(page_size, default, max)
            .map_err(|e| crate::error::invalid_argument("page_size", e.reason))?;
        let token = crm_domain::PageToken::decode(page_token, fingerprint)
            .map_err(|e| crate::error::invalid_argument("page_token", e.to_string()))?;
        Ok(Page { size: size.0, after: token.map(|t| t.after), fingerprint })
    }

    /// The page out of `rows` (fetched with one extra row) and the token of
    /// the next page ("" on the last), keyed by `key` of the last row.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> uuid::Uuid) -> (Vec<T>, String) {
        let more = rows.len() > self.size as usize;
        rows.truncate(self.size as usize);
        let next = match rows.last() {
            Some(last) if more => crm_domain::PageToken { after: key(last), filter: self.fingerprint }.encode(),
            _ => String::new(),
        };
        (rows, next)
    }
}

/// Maps a protobuf enum (i32 on the wire) onto a model vocabulary and back:
///
/// ```ignore
/// crm_platform::enum_map!(pub(crate) kind_in, kind_out, pb::Kind, Kind { Repair <=> Repair, Install <=> Installation });
/// ```
///
/// `kind_in(i32)` is `Ok(None)` for UNSPECIFIED and an error for a number
/// this server does not know; wrap it in [`required`] where a value must be
/// given. `kind_out(Kind)` is the wire number.
#[macro_export]
macro_rules! enum_map {
    ($vis:vis $fn_in:ident, $fn_out:ident, $pb:ty, $model:ty { $($p:ident <=> $m:ident),+ $(,)? }) => {
        /// `Ok(None)` for UNSPECIFIED; unknown numbers are invalid.
        // Some vocabularies travel one way only (output-only fields).
        #[allow(dead_code)]
        $vis fn $fn_in(v: i32) -> ::std::result::Result<Option<$model>, $crate::edge::Invalid> {
            match <$pb>::try_from(v) {
                Ok(<$pb>::Unspecified) => Ok(None),
                $(Ok(<$pb>::$p) => Ok(Some(<$model>::$m)),)+
                Err(_) => Err($crate::edge::Invalid::new(format!("unknown value {v}"))),
            }
        }

        #[allow(dead_code)]
        $vis fn $fn_out(v: $model) -> i32 {
            match v { $(<$model>::$m => <$pb>::$p as i32),+ }
        }
    };
}

/// The tonic service trait of an API type: each unary RPC authenticates the
/// caller and calls the inherent handler of the same name (in the concept's
/// file) with the decoded request; errors become statuses through the
/// service's `From<Error> for Status`. One line per RPC, so a request can
/// be followed from the proto to its handler by name. Streaming RPCs are
/// written out in the optional `streaming { … }` block.
///
/// ```ignore
/// crm_platform::grpc_service! {
///     impl BillingService for BillingApi {
///         get_account(pb::GetAccountRequest) -> pb::GetAccountResponse;
///     }
/// }
/// ```
#[macro_export]
macro_rules! grpc_service {
    (
        impl $trait:ident for $api:ident {
            $($name:ident($req:ty) -> $resp:ty;)+
        }
        $(streaming { $($stream:item)* })?
    ) => {
        #[tonic::async_trait]
        impl $trait for $api {
            $($($stream)*)?
            $(
                async fn $name(
                    &self,
                    request: tonic::Request<$req>,
                ) -> ::std::result::Result<tonic::Response<$resp>, tonic::Status> {
                    let caller = $crate::Caller::of(&request)?;
                    // The inherent handler of the same name (inherent methods win).
                    Ok(tonic::Response::new($api::$name(self, &caller, request.into_inner()).await?))
                }
            )+
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Wire {
        Unspecified = 0,
        One = 1,
        Two = 2,
    }

    impl TryFrom<i32> for Wire {
        type Error = ();
        fn try_from(v: i32) -> Result<Self, ()> {
            match v {
                0 => Ok(Wire::Unspecified),
                1 => Ok(Wire::One),
                2 => Ok(Wire::Two),
                _ => Err(()),
            }
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Model {
        First,
        Second,
    }

    crate::enum_map!(wire_in, wire_out, Wire, Model { One <=> First, Two <=> Second });

    #[test]
    fn pages_cut_the_extra_row_and_tokens_belong_to_their_filter() {
        let page = Page::parse(0, "", 2, 10, 7).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((page.size, page.after), (2, None));
        let ids: Vec<uuid::Uuid> = (1..=3u128).map(uuid::Uuid::from_u128).collect();
        let (rows, next) = page.finish(ids.clone(), |id| *id);
        assert_eq!(rows, ids[..2]);
        let second = Page::parse(2, &next, 2, 10, 7).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(second.after, Some(ids[1]));
        assert_eq!(second.finish(vec![ids[2]], |id| *id).1, "", "the last page has no next token");
        assert_eq!(Page::parse(2, &next, 2, 10, 8).map_err(|e| e.code()), Err(tonic::Code::InvalidArgument));
        assert_eq!(Page::parse(-1, "", 2, 10, 7).map_err(|e| e.code()), Err(tonic::Code::InvalidArgument));
        assert_eq!(Page::parse(99, "", 2, 10, 7).map(|p| p.size).ok(), Some(10));
    }

    #[test]
    fn enums_map_both_ways_and_unknown_numbers_are_invalid() {
        assert_eq!(wire_in(1), Ok(Some(Model::First)));
        assert_eq!(wire_in(0), Ok(None));
        assert!(wire_in(7).is_err());
        assert_eq!(wire_out(Model::Second), 2);
        assert!(required(wire_in(0)).is_err());
        assert_eq!(required(wire_in(2)), Ok(Model::Second));
    }
}

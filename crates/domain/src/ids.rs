//! Typed identifiers: UUIDv7 (time-ordered, so keyset pages follow creation
//! order) wrapped so a `ContactId` can never be passed where a `CustomerId`
//! is expected.

use crate::Invalid;

/// Declares a typed id around a UUIDv7.
#[macro_export]
macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub ::uuid::Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(::uuid::Uuid::now_v7())
            }

            /// Parses the canonical textual form; any UUID version is accepted
            /// so ids minted elsewhere still resolve.
            pub fn parse(s: &str) -> Result<Self, $crate::Invalid> {
                ::uuid::Uuid::try_parse(s.trim())
                    .map(Self)
                    .map_err(|_| $crate::Invalid::new("must be a UUID"))
            }

            pub fn as_uuid(&self) -> ::uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<::uuid::Uuid> for $name {
            fn from(u: ::uuid::Uuid) -> Self {
                Self(u)
            }
        }
    };
}

typed_id!(
    /// A customer (CUS-1).
    CustomerId
);
typed_id!(
    /// A contact person of a customer.
    ContactId
);
typed_id!(
    /// An address of a customer.
    AddressId
);

/// An idempotency key (`request_id`): a UUID chosen by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub uuid::Uuid);

impl RequestId {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.trim().is_empty() {
            return Err(Invalid::new("is required (a UUID chosen by the client, reused on retry)"));
        }
        uuid::Uuid::try_parse(s.trim()).map(Self).map_err(|_| Invalid::new("must be a UUID"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_time_ordered() {
        let a = CustomerId::new();
        let b = CustomerId::new();
        assert!(a < b, "UUIDv7 ids must sort by creation");
        assert_eq!(a.0.get_version_num(), 7);
    }

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        let a = CustomerId::new();
        assert_eq!(CustomerId::parse(&a.to_string()), Ok(a));
        assert!(CustomerId::parse("not-a-uuid").is_err());
        assert!(CustomerId::parse("").is_err());
    }

    #[test]
    fn request_id_is_required_and_a_uuid() {
        assert!(RequestId::parse("").is_err());
        assert!(RequestId::parse("abc").is_err());
        assert!(RequestId::parse("0190f5a0-0000-7000-8000-000000000001").is_ok());
    }
}

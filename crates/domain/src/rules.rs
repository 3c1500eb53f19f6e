//! What every service's model shares: closed vocabularies stored as text,
//! the business-rule refusal (FAILED_PRECONDITION with a stable reason), the
//! rule-level permission refusal (PERMISSION_DENIED with a stable reason),
//! and opaque etags.

/// A business rule that refused a request: FAILED_PRECONDITION with `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleViolation {
    pub reason: &'static str,
    pub message: String,
}

impl RuleViolation {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

/// A caller this rule does not let act here: PERMISSION_DENIED with
/// `reason` (the policy table let the role through; the rule looked
/// closer: whose record, which branch, four eyes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    pub reason: &'static str,
    pub message: String,
}

impl Denied {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

/// The opaque etag of a version. Clients compare it, never parse it.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Declares a closed vocabulary stored as text in the database: an enum with
/// `ALL`, `as_str` and `from_db`.
#[macro_export]
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn from_db(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::vocabulary!(Colour { Red = "red", Green = "green" });

    #[test]
    fn vocabularies_round_trip() {
        for c in Colour::ALL {
            assert_eq!(Colour::from_db(c.as_str()), Some(*c));
        }
        assert_eq!(Colour::from_db("blue"), None);
    }

    #[test]
    fn etags_differ_by_version() {
        assert_ne!(etag(1), etag(2));
        assert_eq!(RuleViolation::new("X", "y").to_string(), "y");
    }
}

//! The edge kit every service's `api/convert` uses: protobuf enums ⇄ model
//! vocabularies (`enum_map!`), required enums, and (in `error`) collecting
//! field violations with `Violations::finish_with`.

pub use crm_domain::Invalid;

/// A required enum: UNSPECIFIED (or nothing) is rejected.
pub fn required<T>(r: Result<Option<T>, Invalid>) -> Result<T, Invalid> {
    r?.ok_or_else(|| Invalid::new("is required (UNSPECIFIED is not a value)"))
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
    fn enums_map_both_ways_and_unknown_numbers_are_invalid() {
        assert_eq!(wire_in(1), Ok(Some(Model::First)));
        assert_eq!(wire_in(0), Ok(None));
        assert!(wire_in(7).is_err());
        assert_eq!(wire_out(Model::Second), 2);
        assert!(required(wire_in(0)).is_err());
        assert_eq!(required(wire_in(2)), Ok(Model::Second));
    }
}

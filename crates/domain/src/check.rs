//! Checks the services' tests share for the vocabularies and lifecycles
//! their models declare. They panic with the offending case.

use std::fmt::Debug;

/// Every word of a vocabulary reads back from its stored form as itself.
pub fn vocabulary_round_trips<T: Copy + PartialEq + Debug>(
    all: &[T],
    as_str: fn(&T) -> &'static str,
    from_db: fn(&str) -> Option<T>,
) {
    assert!(!all.is_empty(), "an empty vocabulary");
    for v in all {
        assert_eq!(from_db(as_str(v)), Some(*v), "{v:?} does not read back from {:?}", as_str(v));
    }
}

/// A lifecycle decides every (state, event) pair as `allowed` says: the
/// listed ones lead to their state, every other one is refused.
pub fn lifecycle_is_the_table<S, E, R>(
    states: &[S],
    events: &[E],
    allowed: &[(S, E, S)],
    transition: impl Fn(S, E) -> Result<S, R>,
) where
    S: Copy + PartialEq + Debug,
    E: Copy + PartialEq + Debug,
    R: Debug,
{
    let mut checked = 0;
    for &from in states {
        for &event in events {
            let got = transition(from, event);
            match allowed.iter().find(|(f, e, _)| *f == from && *e == event) {
                Some(&(_, _, to)) => {
                    assert!(matches!(&got, Ok(s) if *s == to), "{from:?} + {event:?}: {got:?}, not {to:?}")
                }
                None => assert!(got.is_err(), "{from:?} + {event:?} must be refused, got {got:?}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, states.len() * events.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::vocabulary!(Light { Red = "red", Green = "green" });

    fn next(l: Light, go: bool) -> Result<Light, &'static str> {
        match (l, go) {
            (Light::Red, true) => Ok(Light::Green),
            (Light::Green, false) => Ok(Light::Red),
            _ => Err("ILLEGAL_TRANSITION"),
        }
    }

    #[test]
    fn a_table_that_matches_passes_and_one_that_does_not_panics() {
        vocabulary_round_trips(Light::ALL, Light::as_str, Light::from_db);
        let table = [(Light::Red, true, Light::Green), (Light::Green, false, Light::Red)];
        lifecycle_is_the_table(Light::ALL, &[true, false], &table, next);
        let wrong = [(Light::Red, true, Light::Green)];
        let missed = std::panic::catch_unwind(|| lifecycle_is_the_table(Light::ALL, &[true, false], &wrong, next));
        assert!(missed.is_err(), "an allowed pair missing from the table is caught");
    }
}

//! Free text from requests: trimmed, bounded, no control characters.

use crate::Invalid;

/// A required text field: trimmed, 1..=max characters, no control characters.
pub fn required(s: &str, max_chars: usize) -> Result<String, Invalid> {
    let t = optional(s, max_chars)?;
    if t.is_empty() {
        return Err(Invalid::new("is required"));
    }
    Ok(t)
}

/// An optional text field: trimmed (may become empty), at most `max_chars`
/// characters, no control characters except newlines and tabs.
pub fn optional(s: &str, max_chars: usize) -> Result<String, Invalid> {
    let t = s.trim();
    if t.chars().count() > max_chars {
        return Err(Invalid::new(format!("must be at most {max_chars} characters")));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(Invalid::new("must not contain control characters"));
    }
    Ok(t.to_string())
}

/// A code-like token (region, tag, industry code): 1..=max characters of
/// letters, digits, `-`, `_`, `.`, `/` or CJK, no spaces at the ends.
pub fn single_line(s: &str, max_chars: usize) -> Result<String, Invalid> {
    let t = optional(s, max_chars)?;
    if t.contains(['\n', '\r', '\t']) {
        return Err(Invalid::new("must be a single line"));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_bounds() {
        assert_eq!(required("  北京 ", 10), Ok("北京".to_string()));
        assert!(required("   ", 10).is_err());
        assert!(required("一二三四五六", 5).is_err());
        assert_eq!(optional("", 5), Ok(String::new()));
        assert!(optional("a\u{0}b", 5).is_err());
        assert!(single_line("a\nb", 5).is_err());
    }
}

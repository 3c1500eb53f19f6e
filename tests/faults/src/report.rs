//! Verdicts: one line per check with its numbers, details of every failure,
//! and a Markdown table of the whole run.

use std::{collections::BTreeMap, fmt::Write as _};

use tonic::Code;

#[derive(Debug, Clone)]
pub struct Verdict {
    pub scenario: &'static str,
    pub subject: String,
    pub pass: bool,
    pub numbers: String,
    pub failures: Vec<String>,
}

impl Verdict {
    pub fn new(scenario: &'static str, subject: impl Into<String>) -> Self {
        Self { scenario, subject: subject.into(), pass: true, numbers: String::new(), failures: Vec::new() }
    }

    /// Records a failed check (the verdict fails).
    pub fn fail(&mut self, why: impl Into<String>) {
        self.pass = false;
        self.failures.push(why.into());
    }

    /// Fails with `why` unless `ok`.
    pub fn check(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if !ok {
            self.fail(why());
        }
    }

    pub fn print(&self) {
        println!(
            "[{}] {} · {}: {}",
            if self.pass { "PASS" } else { "FAIL" },
            self.scenario,
            self.subject,
            self.numbers
        );
        for f in self.failures.iter().take(40) {
            println!("       ✗ {f}");
        }
        if self.failures.len() > 40 {
            println!("       … and {} more", self.failures.len() - 40);
        }
    }
}

/// Counts of status codes, printed `Ok×12 Unavailable×3`.
#[derive(Debug, Clone, Default)]
pub struct Tally(pub BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, code: Code) {
        *self.0.entry(format!("{code:?}")).or_default() += 1;
    }

    pub fn get(&self, code: Code) -> u64 {
        self.0.get(&format!("{code:?}")).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Codes other than those in `allowed`.
    pub fn others(&self, allowed: &[Code]) -> Vec<(String, u64)> {
        let allowed: Vec<String> = allowed.iter().map(|c| format!("{c:?}")).collect();
        self.0.iter().filter(|(k, _)| !allowed.contains(k)).map(|(k, v)| (k.clone(), *v)).collect()
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        f.write_str(&parts.join(" "))
    }
}

/// The run as a Markdown table (for docs/reliability.md).
pub fn markdown(verdicts: &[Verdict]) -> String {
    let mut out = String::from("| Scenario | Subject | Result | Numbers |\n|---|---|---|---|\n");
    for v in verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            v.scenario,
            v.subject,
            if v.pass { "pass" } else { "**FAIL**" },
            v.numbers.replace('|', "\\|")
        );
    }
    for v in verdicts.iter().filter(|v| !v.pass) {
        let _ = writeln!(out, "\n{} · {}:", v.scenario, v.subject);
        for f in &v.failures {
            let _ = writeln!(out, "- {}", f.replace('|', "\\|"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_fails_the_verdict_and_reaches_the_table() {
        let mut v = Verdict::new("x", "subject");
        v.check(true, || "never".into());
        assert!(v.pass);
        v.check(false, || "2 lost | 1 duplicated".into());
        assert!(!v.pass);
        let table = markdown(&[v]);
        assert!(table.contains("**FAIL**") && table.contains("2 lost \\| 1 duplicated"));
    }

    #[test]
    fn tallies_name_the_codes_not_allowed() {
        let mut t = Tally::default();
        for c in [Code::Ok, Code::Ok, Code::Unavailable, Code::Internal] {
            t.add(c);
        }
        assert_eq!((t.total(), t.get(Code::Ok)), (4, 2));
        assert_eq!(t.others(&[Code::Ok, Code::Unavailable]), vec![("Internal".to_string(), 1)]);
        assert_eq!(t.to_string(), "Internal×1 Ok×2 Unavailable×1");
    }
}

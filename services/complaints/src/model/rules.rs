//! The rules beyond the state table: re-test of test data (CMP-5),
//! committed answer times (CMP-6), compensation (CMP-8).

use chrono::{DateTime, Utc};

use super::{Category, Complaint, RetestOutcome, Round, RuleViolation, Verdict};

impl Complaint {
    fn round_or_corrupt(&self) -> Result<&Round, RuleViolation> {
        self.current_round()
            .ok_or_else(|| RuleViolation::new("COMPLAINT_NOT_ACCEPTED", "the complaint has no investigation round yet"))
    }

    /// CMP-5 applies to complaints about test data only.
    pub fn check_retest_applies(&self) -> Result<(), RuleViolation> {
        if self.category != Category::TestResult {
            return Err(RuleViolation::new(
                "RETEST_NOT_APPLICABLE",
                "only complaints about a test result or report are reviewed and re-tested (CMP-5)",
            ));
        }
        Ok(())
    }

    /// What a resolution needs besides the state: a test-data complaint has
    /// had its records reviewed, and an amended report was approved (CMP-5).
    pub fn check_resolvable(&self) -> Result<(), RuleViolation> {
        if self.category != Category::TestResult {
            return Ok(());
        }
        match &self.round_or_corrupt()?.retest {
            None => Err(RuleViolation::new(
                "RETEST_REQUIRED",
                "a complaint about test data is resolved after the original records were reviewed (CMP-5)",
            )),
            Some(r) if r.outcome == RetestOutcome::Amended && r.approved_by.is_none() => Err(RuleViolation::new(
                "AMENDMENT_NOT_APPROVED",
                "the amended report needs the authorized signatory's approval first (CMP-5)",
            )),
            Some(_) => Ok(()),
        }
    }

    /// An amendment of this round waiting for the signatory.
    pub fn check_amendment_pending(&self) -> Result<(), RuleViolation> {
        match &self.round_or_corrupt()?.retest {
            Some(r) if r.outcome == RetestOutcome::Amended && r.approved_by.is_none() => Ok(()),
            Some(r) if r.outcome == RetestOutcome::Amended => {
                Err(RuleViolation::new("AMENDMENT_ALREADY_APPROVED", "the amendment was already approved"))
            }
            _ => Err(RuleViolation::new("NO_AMENDMENT", "no amended report is waiting for approval in this round")),
        }
    }

    /// A re-test recorded again replaces the round's earlier one, unless an
    /// amendment was already approved: that one is final.
    pub fn check_retest_replaceable(&self) -> Result<(), RuleViolation> {
        match &self.round_or_corrupt()?.retest {
            Some(r) if r.approved_by.is_some() => Err(RuleViolation::new(
                "AMENDMENT_ALREADY_APPROVED",
                "the amended report of this round was approved; the re-test record is final",
            )),
            _ => Ok(()),
        }
    }

    /// CMP-6: a promise to the customer is in the future and keeps the
    /// policy deadline.
    pub fn check_commitment(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), RuleViolation> {
        let round = self.round_or_corrupt()?;
        if at <= now {
            return Err(RuleViolation::new("COMMITMENT_IN_PAST", "the committed answer time must be in the future"));
        }
        if at > round.answer_due_at {
            return Err(RuleViolation::new(
                "COMMITMENT_AFTER_DEADLINE",
                format!(
                    "the committed answer time must not be later than the deadline {} (CMP-6)",
                    round.answer_due_at
                ),
            ));
        }
        Ok(())
    }

    /// CMP-8: compensation follows a justified complaint, and an approved
    /// one is final.
    pub fn check_compensable(&self) -> Result<(), RuleViolation> {
        let justified = self.round_or_corrupt()?.findings.as_ref().is_some_and(|f| f.verdict == Verdict::Justified);
        if !justified {
            return Err(RuleViolation::new(
                "COMPLAINT_NOT_JUSTIFIED",
                "compensation is agreed only for a complaint found justified (CMP-8)",
            ));
        }
        if self.compensation.as_ref().is_some_and(|c| c.approved_by.is_some()) {
            return Err(RuleViolation::new("COMPENSATION_ALREADY_APPROVED", "the compensation was already approved"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use crm_domain::{Money, WorkingCalendar, ids::CustomerId};

    use super::*;
    use crate::model::{
        Channel, Compensation, CustomerTier, Findings, References, Retest, ServiceLevel, Urgency,
        intake::{CustomerSnapshot, NewComplaint},
    };

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).single().unwrap_or_default()
    }

    fn complaint(category: Category) -> Complaint {
        let new = NewComplaint {
            customer_id: CustomerId::new(),
            channel: Channel::Email,
            category,
            department: "lab".into(),
            urgency: Urgency::Normal,
            description: "x".into(),
            references: References::default(),
            report_received_on: None,
        };
        let snap = CustomerSnapshot {
            id: crm_domain::ids::CustomerId::new(),
            name: "c".into(),
            service_level: ServiceLevel::General,
            tier: CustomerTier::Key,
        };
        let mut c = Complaint::register(new, snap, 2026, 1, "desk", at(), &WorkingCalendar::default());
        c.round = 1;
        c.rounds.push(Round::open(1, at(), at() + Duration::days(15)));
        c
    }

    fn retest(outcome: RetestOutcome) -> Retest {
        Retest {
            records_review: "checked".into(),
            retested: true,
            testers: vec!["t1".into(), "t2".into()],
            outcome,
            revoked_report_id: None,
            corrected_report_id: None,
            recorded_by: "head".into(),
            recorded_at: at(),
            approved_by: None,
            approved_at: None,
        }
    }

    #[test]
    fn test_data_complaints_need_a_review_and_an_approved_amendment() {
        let mut c = complaint(Category::TestResult);
        assert_eq!(c.check_resolvable().map_err(|e| e.reason), Err("RETEST_REQUIRED"));
        assert_eq!(c.check_amendment_pending().map_err(|e| e.reason), Err("NO_AMENDMENT"));
        if let Some(r) = c.current_round_mut() {
            r.retest = Some(retest(RetestOutcome::Amended));
        }
        assert_eq!(c.check_resolvable().map_err(|e| e.reason), Err("AMENDMENT_NOT_APPROVED"));
        assert_eq!(c.check_amendment_pending(), Ok(()));
        if let Some(r) = c.current_round_mut().and_then(|r| r.retest.as_mut()) {
            r.approved_by = Some("qm".into());
        }
        assert_eq!(c.check_resolvable(), Ok(()));
        assert_eq!(c.check_retest_replaceable().map_err(|e| e.reason), Err("AMENDMENT_ALREADY_APPROVED"));
        assert_eq!(
            complaint(Category::Billing).check_retest_applies().map_err(|e| e.reason),
            Err("RETEST_NOT_APPLICABLE")
        );
        assert_eq!(complaint(Category::Billing).check_resolvable(), Ok(()));
    }

    #[test]
    fn commitments_are_future_and_within_the_deadline() {
        let c = complaint(Category::Billing);
        let now = at() + Duration::hours(1);
        assert_eq!(c.check_commitment(now, now).map_err(|e| e.reason), Err("COMMITMENT_IN_PAST"));
        assert_eq!(
            c.check_commitment(at() + Duration::days(16), now).map_err(|e| e.reason),
            Err("COMMITMENT_AFTER_DEADLINE")
        );
        assert_eq!(c.check_commitment(at() + Duration::days(3), now), Ok(()));
    }

    #[test]
    fn compensation_needs_a_justified_verdict() {
        let mut c = complaint(Category::Billing);
        assert_eq!(c.check_compensable().map_err(|e| e.reason), Err("COMPLAINT_NOT_JUSTIFIED"));
        let findings = |verdict| Findings {
            verdict,
            facts: "f".into(),
            root_cause: "r".into(),
            corrective_actions: "c".into(),
            preventive_actions: "p".into(),
        };
        if let Some(r) = c.current_round_mut() {
            r.findings = Some(findings(Verdict::Unjustified));
        }
        assert!(c.check_compensable().is_err());
        if let Some(r) = c.current_round_mut() {
            r.findings = Some(findings(Verdict::Justified));
        }
        assert_eq!(c.check_compensable(), Ok(()));
        c.compensation = Some(Compensation {
            amount: Money::cny(100),
            reason: "loss".into(),
            proposed_by: "head".into(),
            proposed_at: at(),
            approved_by: Some("sm".into()),
            approved_at: Some(at()),
        });
        assert_eq!(c.check_compensable().map_err(|e| e.reason), Err("COMPENSATION_ALREADY_APPROVED"));
    }
}

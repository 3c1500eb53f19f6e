-- CUS-11: billing closes a terminating customer's account only after
-- dispatch's report of the same saga, and only once every completed work
-- order with an amount due that the report lists is invoiced: the two feeds
-- are independent, so a job finished while the termination runs could
-- otherwise reach billing after the account is closed.
--
-- `asked`: customers' termination_started has arrived (dispatch's report may
-- come first and only records the list). Rows from before this change were
-- all asked and are not held back for a report already consumed.
ALTER TABLE billing.terminations
    ADD COLUMN asked boolean NOT NULL DEFAULT true,
    ADD COLUMN dispatch_reported boolean NOT NULL DEFAULT true,
    ADD COLUMN billable_work_orders uuid[] NOT NULL DEFAULT '{}';
ALTER TABLE billing.terminations
    ALTER COLUMN asked SET DEFAULT false,
    ALTER COLUMN dispatch_reported SET DEFAULT false;

-- Issue 14, CUS-3/CUS-4.
-- A reassignment that overrode the owner's first-contact protection is
-- recorded as such, next to its reason.
ALTER TABLE customers.ownership_history
    ADD COLUMN first_contact_override boolean NOT NULL DEFAULT false;

-- CUS-2/CUS-3: an identity match is the same customer; the salesperson
-- refused files a claim that a sales manager decides.
CREATE TABLE customers.ownership_claims (
    id              uuid PRIMARY KEY,
    customer_id     uuid NOT NULL REFERENCES customers.customers (id),
    claimant_id     text NOT NULL,
    claimant_branch text NOT NULL,
    owner_id        text NOT NULL,
    reason          text NOT NULL,
    state           text NOT NULL CHECK (state IN ('pending', 'granted', 'rejected')),
    filed_at        timestamptz NOT NULL DEFAULT now(),
    decided_by      text,
    decided_at      timestamptz,
    decision_reason text,
    version         bigint NOT NULL DEFAULT 1
);
-- One open claim per claimant and customer.
CREATE UNIQUE INDEX ownership_claims_one_pending_idx
    ON customers.ownership_claims (customer_id, claimant_id) WHERE state = 'pending';
CREATE INDEX ownership_claims_customer_idx ON customers.ownership_claims (customer_id, id);
CREATE INDEX ownership_claims_claimant_idx ON customers.ownership_claims (claimant_id, id);

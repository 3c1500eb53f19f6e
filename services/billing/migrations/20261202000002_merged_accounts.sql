-- CUS-2 merges reach billing. BIL-1's "one account per customer" holds for
-- the accounts opened for a customer; a merged-away customer's account moves
-- to the survivor. When the survivor has an account of its own, the moved
-- one is kept beside it (`side_account`): its ledger, invoices and payments
-- stay as they were, and billing never merges ledgers by itself.
ALTER TABLE billing.accounts ADD COLUMN merged_from uuid;
ALTER TABLE billing.accounts ADD COLUMN side_account boolean NOT NULL DEFAULT false;
ALTER TABLE billing.accounts DROP CONSTRAINT accounts_customer_key;
CREATE UNIQUE INDEX accounts_customer_key ON billing.accounts (customer_id) WHERE NOT side_account;
CREATE INDEX accounts_side_idx ON billing.accounts (customer_id) WHERE side_account;

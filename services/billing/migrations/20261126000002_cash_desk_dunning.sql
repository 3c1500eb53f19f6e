-- BIL-8 cash desk shifts and BIL-7 dunning steps.

CREATE TABLE billing.shifts (
    id             uuid PRIMARY KEY,
    cashier_id     text NOT NULL,
    status         text NOT NULL CHECK (status IN ('open', 'closed', 'handed_over')),
    currency       text NOT NULL,
    float_minor    bigint NOT NULL CHECK (float_minor >= 0),
    opened_at      timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz,
    handed_over_to text,
    handed_over_at timestamptz,
    hand_over_note text NOT NULL DEFAULT '',
    version        bigint NOT NULL DEFAULT 1
);
-- One open shift per cashier.
CREATE UNIQUE INDEX shifts_one_open_idx ON billing.shifts (cashier_id) WHERE status = 'open';

-- What was counted at close, per method, next to what was recorded.
CREATE TABLE billing.shift_counts (
    shift_id       uuid NOT NULL REFERENCES billing.shifts (id),
    method         text NOT NULL,
    expected_minor bigint NOT NULL,
    counted_minor  bigint NOT NULL,
    PRIMARY KEY (shift_id, method)
);

ALTER TABLE billing.funds ADD COLUMN shift_id uuid REFERENCES billing.shifts (id);
CREATE INDEX funds_shift_idx ON billing.funds (shift_id) WHERE shift_id IS NOT NULL;
CREATE INDEX funds_created_idx ON billing.funds (created_at) WHERE kind = 'payment';

ALTER TABLE billing.invoices ADD COLUMN volume_litres bigint NOT NULL DEFAULT 0;
CREATE INDEX invoices_issued_at_idx ON billing.invoices (issued_at) WHERE issued_at IS NOT NULL;

-- Reminder 1, reminder 2 and the final notice, each recorded once per
-- invoice: the unique key makes the dunning job safe on every replica.
CREATE TABLE billing.dunning_steps (
    invoice_id  uuid NOT NULL REFERENCES billing.invoices (id),
    step        text NOT NULL CHECK (step IN ('reminder_1', 'reminder_2', 'final_notice')),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (invoice_id, step)
);

-- SPEC X-2 flows into billing: invoices raised from completed work orders,
-- on-site payments taken on them, one credit note per compensated complaint,
-- and billing's part of the CUS-11 termination saga.

-- A work order is invoiced at most once (X-2), whoever raises the invoice.
ALTER TABLE billing.invoices ADD COLUMN work_order_id uuid;
CREATE UNIQUE INDEX invoices_work_order_key ON billing.invoices (work_order_id) WHERE work_order_id IS NOT NULL;

-- The work order an on-site payment (BIL-5) was collected on.
ALTER TABLE billing.funds ADD COLUMN work_order_id uuid;

-- CMP-8 / BIL-6: a complaint's agreed compensation is one credit note.
CREATE UNIQUE INDEX funds_complaint_credit_key ON billing.funds (complaint_id)
    WHERE kind = 'credit_note' AND complaint_id IS NOT NULL;

-- CUS-11: terminations billing was asked to clear. `pending` ones are looked
-- at again by every replica's re-check job (FOR UPDATE SKIP LOCKED) until the
-- account is clear; the last hold reported is kept so a hold is reported
-- again only when its reason changes.
CREATE TABLE billing.terminations (
    saga_id     uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'done')),
    account_id  uuid REFERENCES billing.accounts (id),
    hold_code   text,
    hold_reason text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    checked_at  timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz,
    CONSTRAINT terminations_done_at CHECK ((status = 'done') = (done_at IS NOT NULL))
);
CREATE INDEX terminations_pending_idx ON billing.terminations (checked_at) WHERE status = 'pending';

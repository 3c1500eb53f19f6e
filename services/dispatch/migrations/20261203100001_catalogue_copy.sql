-- DSP-5 / BIL-2: one price catalogue. dispatch.parts becomes a read-only
-- copy of billing's catalogue, kept by catalogue_item.changed events (the
-- CreatePart RPC is gone). A change applies only when its revision is newer
-- than the row's, so a redelivered or late event never rolls a price back.
ALTER TABLE dispatch.parts
    ADD COLUMN kind text NOT NULL DEFAULT 'part' CHECK (kind IN ('part', 'service')),
    ADD COLUMN vat_rate_bp integer NOT NULL DEFAULT 0 CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    ADD COLUMN active boolean NOT NULL DEFAULT true,
    ADD COLUMN revision bigint NOT NULL DEFAULT 0,
    ADD COLUMN changed_at timestamptz;

-- Parts created here before (by CreatePart) priced nothing in billing: they
-- stay for the work orders that used them, withdrawn until billing's
-- catalogue publishes their code (billing announces its existing items when
-- it starts, and any revision > 0 replaces these rows).
UPDATE dispatch.parts SET active = false WHERE revision = 0;

-- The VAT rate each part line was priced at (net price + VAT, as billing
-- invoices it). Lines priced before carry 0: their price was all-in.
ALTER TABLE dispatch.work_order_parts
    ADD COLUMN vat_rate_bp integer NOT NULL DEFAULT 0 CHECK (vat_rate_bp BETWEEN 0 AND 10000);

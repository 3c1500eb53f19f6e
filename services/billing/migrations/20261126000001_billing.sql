-- Billing: accounts (BIL-1), tariffs and catalogue (BIL-2), invoices (BIL-4),
-- payments and credit notes as funds allocated to invoices (BIL-5, BIL-6),
-- and the immutable ledger whose sum is the account balance (BIL-9).

CREATE TABLE billing.accounts (
    id             uuid PRIMARY KEY,
    customer_id    uuid NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('prepaid', 'postpaid')),
    status         text NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
    customer_class text NOT NULL CHECK (customer_class IN ('residential', 'commercial', 'industrial')),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    card_number    text UNIQUE,
    -- What the customer owes (negative: credit). Maintained only by the
    -- ledger trigger below, so it always equals the sum of the entries.
    balance_minor  bigint NOT NULL DEFAULT 0,
    version        bigint NOT NULL DEFAULT 1,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_customer_key UNIQUE (customer_id),
    CONSTRAINT accounts_card_for_prepaid CHECK ((kind = 'prepaid') = (card_number IS NOT NULL))
);
CREATE SEQUENCE billing.card_numbers START 100000001;

CREATE TABLE billing.tariffs (
    id             uuid PRIMARY KEY,
    customer_class text NOT NULL CHECK (customer_class IN ('residential', 'commercial', 'industrial')),
    effective_from date NOT NULL,
    vat_rate_bp    integer NOT NULL CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    currency       text NOT NULL,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tariffs_class_from_key UNIQUE (customer_class, effective_from)
);
CREATE TABLE billing.tariff_blocks (
    tariff_id          uuid NOT NULL REFERENCES billing.tariffs (id),
    position           integer NOT NULL,
    up_to_m3           bigint,
    price_minor_per_m3 bigint NOT NULL CHECK (price_minor_per_m3 >= 0),
    PRIMARY KEY (tariff_id, position)
);

CREATE TABLE billing.catalogue_items (
    code             text PRIMARY KEY,
    description      text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('part', 'service')),
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    currency         text NOT NULL,
    vat_rate_bp      integer NOT NULL CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    active           boolean NOT NULL DEFAULT true,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE billing.invoice_counters (
    series text NOT NULL,
    year   integer NOT NULL,
    last   bigint NOT NULL,
    PRIMARY KEY (series, year)
);

CREATE TABLE billing.invoices (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES billing.accounts (id),
    series      text NOT NULL CHECK (series ~ '^[A-Z]{2,8}$'),
    number      text UNIQUE,
    status      text NOT NULL CHECK (status IN ('draft', 'issued', 'partly_paid', 'paid', 'void')),
    currency    text NOT NULL,
    net_minor   bigint NOT NULL,
    vat_minor   bigint NOT NULL,
    total_minor bigint NOT NULL CHECK (total_minor = net_minor + vat_minor),
    paid_minor  bigint NOT NULL DEFAULT 0 CHECK (paid_minor BETWEEN 0 AND total_minor),
    due_in_days integer NOT NULL CHECK (due_in_days BETWEEN 0 AND 365),
    due_on      date,
    issued_at   timestamptz,
    void_reason text,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    version     bigint NOT NULL DEFAULT 1,
    CONSTRAINT invoices_number_when_issued CHECK ((status = 'draft') = (number IS NULL) OR status = 'void')
);
CREATE INDEX invoices_open_idx ON billing.invoices (account_id, issued_at, id) WHERE status IN ('issued', 'partly_paid');
CREATE INDEX invoices_due_idx ON billing.invoices (due_on) WHERE status IN ('issued', 'partly_paid');

CREATE TABLE billing.invoice_lines (
    invoice_id       uuid NOT NULL REFERENCES billing.invoices (id),
    position         integer NOT NULL,
    catalogue_code   text,
    description      text NOT NULL,
    quantity_milli   bigint NOT NULL CHECK (quantity_milli > 0),
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    vat_rate_bp      integer NOT NULL,
    net_minor        bigint NOT NULL,
    vat_minor        bigint NOT NULL,
    PRIMARY KEY (invoice_id, position)
);

-- Payments and credit notes: money in favour of the customer, allocated to
-- invoices oldest first; what is unallocated is credit.
CREATE TABLE billing.funds (
    id                uuid PRIMARY KEY,
    account_id        uuid NOT NULL REFERENCES billing.accounts (id),
    kind              text NOT NULL CHECK (kind IN ('payment', 'credit_note')),
    method            text CHECK (method IN ('cash', 'bank_card', 'transfer', 'on_site', 'prepaid_top_up')),
    amount_minor      bigint NOT NULL CHECK (amount_minor > 0),
    unallocated_minor bigint NOT NULL CHECK (unallocated_minor BETWEEN 0 AND amount_minor),
    reference         text NOT NULL DEFAULT '',
    reason            text NOT NULL DEFAULT '',
    invoice_id        uuid REFERENCES billing.invoices (id),
    complaint_id      uuid,
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX funds_open_idx ON billing.funds (account_id, created_at, id) WHERE unallocated_minor > 0;

CREATE TABLE billing.allocations (
    fund_id      uuid NOT NULL REFERENCES billing.funds (id),
    invoice_id   uuid NOT NULL REFERENCES billing.invoices (id),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX allocations_invoice_idx ON billing.allocations (invoice_id);

-- The ledger: every charge, payment, credit, refund and adjustment, never
-- changed or deleted. The trigger keeps accounts.balance_minor equal to the
-- sum of an account's entries.
CREATE TABLE billing.ledger_entries (
    id           bigserial PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES billing.accounts (id),
    kind         text NOT NULL CHECK (kind IN ('charge', 'payment', 'credit', 'refund', 'adjustment')),
    amount_minor bigint NOT NULL CHECK (amount_minor <> 0),
    description  text NOT NULL,
    invoice_id   uuid REFERENCES billing.invoices (id),
    fund_id      uuid REFERENCES billing.funds (id),
    created_by   text NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_account_idx ON billing.ledger_entries (account_id, occurred_at, id);

CREATE FUNCTION billing.ledger_posted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE billing.accounts SET balance_minor = balance_minor + NEW.amount_minor WHERE id = NEW.account_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_posted AFTER INSERT ON billing.ledger_entries
    FOR EACH ROW EXECUTE FUNCTION billing.ledger_posted();

CREATE FUNCTION billing.ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable (BIL-9)';
END
$$;
CREATE TRIGGER ledger_immutable BEFORE UPDATE OR DELETE ON billing.ledger_entries
    FOR EACH ROW EXECUTE FUNCTION billing.ledger_immutable();

-- Issued invoices never change except for what payments and voiding record.
CREATE FUNCTION billing.invoice_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft' AND (NEW.net_minor, NEW.vat_minor, NEW.total_minor, NEW.number, NEW.account_id,
        NEW.series, NEW.issued_at) IS DISTINCT FROM (OLD.net_minor, OLD.vat_minor, OLD.total_minor, OLD.number,
        OLD.account_id, OLD.series, OLD.issued_at) THEN
        RAISE EXCEPTION 'issued invoices are immutable (BIL-4)';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER invoice_immutable BEFORE UPDATE ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing.invoice_immutable();

CREATE TABLE billing.idempotency_keys (
    request_id uuid PRIMARY KEY,
    principal  text NOT NULL,
    method     text NOT NULL,
    request    bytea NOT NULL,
    response   bytea,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_idx ON billing.idempotency_keys (created_at);

CREATE TABLE billing.outbox (
    seq          bigserial PRIMARY KEY,
    id           uuid NOT NULL UNIQUE,
    event_type   text NOT NULL,
    aggregate_id uuid NOT NULL,
    payload      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);

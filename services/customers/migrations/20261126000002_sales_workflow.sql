-- The sales workflow: timely entry (CUS-5), first contact (CUS-4), merging
-- (CUS-2), interactions and follow-ups (CUS-6), visits (CUS-7), surveys
-- (CUS-10), key-account plans (CUS-12), and the outbox other services will
-- read events from (X-1).

ALTER TABLE customers.customers
    ADD COLUMN collected_at      timestamptz,
    ADD COLUMN entry_late        boolean NOT NULL DEFAULT false,
    ADD COLUMN assigned_at       timestamptz,
    ADD COLUMN first_contact_due timestamptz,
    ADD COLUMN first_contact_at  timestamptz,
    ADD COLUMN merged_into       uuid REFERENCES customers.customers (id),
    ADD CONSTRAINT customers_not_merged_into_self CHECK (merged_into IS DISTINCT FROM id);

CREATE INDEX customers_first_contact_due_idx ON customers.customers (first_contact_due)
    WHERE first_contact_at IS NULL AND first_contact_due IS NOT NULL;
CREATE INDEX customers_merged_into_idx ON customers.customers (merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX customers_created_at_idx ON customers.customers (created_at);

CREATE TABLE customers.interactions (
    id           uuid PRIMARY KEY,
    customer_id  uuid NOT NULL REFERENCES customers.customers (id),
    channel      text NOT NULL CHECK (channel IN ('phone', 'email', 'fax', 'letter', 'thank_you_card',
                     'seminar_invitation', 'visit')),
    occurred_at  timestamptz NOT NULL,
    contact_name text NOT NULL DEFAULT '',
    summary      text NOT NULL CHECK (summary <> ''),
    outcome      text NOT NULL DEFAULT '',
    recorded_by  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX interactions_customer_idx ON customers.interactions (customer_id, id);

CREATE TABLE customers.follow_ups (
    id                  uuid PRIMARY KEY,
    customer_id         uuid NOT NULL REFERENCES customers.customers (id),
    owner_id            text NOT NULL,
    due_at              timestamptz NOT NULL,
    repeat_every_days   integer NOT NULL DEFAULT 0 CHECK (repeat_every_days BETWEEN 0 AND 366),
    note                text NOT NULL DEFAULT '',
    done_at             timestamptz,
    done_by_interaction uuid REFERENCES customers.interactions (id),
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX follow_ups_due_idx ON customers.follow_ups (due_at, id) WHERE done_at IS NULL;
CREATE INDEX follow_ups_customer_idx ON customers.follow_ups (customer_id);

CREATE TABLE customers.visits (
    id                   uuid PRIMARY KEY,
    customer_id          uuid NOT NULL REFERENCES customers.customers (id),
    state                text NOT NULL CHECK (state IN ('planned', 'approved', 'done', 'minutes_submitted',
                             'minutes_reviewed', 'minutes_sent', 'receipt_confirmed')),
    purpose              text NOT NULL CHECK (purpose <> ''),
    goals                text NOT NULL DEFAULT '',
    attendees            text[] NOT NULL DEFAULT '{}',
    planned_for          timestamptz NOT NULL,
    planned_by           text NOT NULL,
    approved_by          text,
    approved_at          timestamptz,
    visited_at           timestamptz,
    minutes              text NOT NULL DEFAULT '',
    minutes_due          timestamptz,
    minutes_submitted_at timestamptz,
    minutes_late         boolean NOT NULL DEFAULT false,
    reviewed_by          text,
    reviewed_at          timestamptz,
    sent_at              timestamptz,
    receipt_confirmed_by text,
    receipt_at           timestamptz,
    version              bigint NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX visits_customer_idx ON customers.visits (customer_id, id);

CREATE TABLE customers.surveys (
    id          uuid PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES customers.customers (id),
    score       smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
    channel     text NOT NULL DEFAULT '',
    answered_on date NOT NULL,
    comments    text NOT NULL DEFAULT '',
    recorded_by text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX surveys_answered_on_idx ON customers.surveys (answered_on);
CREATE INDEX surveys_customer_idx ON customers.surveys (customer_id);

CREATE TABLE customers.account_plans (
    id             uuid PRIMARY KEY,
    customer_id    uuid NOT NULL REFERENCES customers.customers (id),
    year           integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    strategy       text NOT NULL CHECK (strategy <> ''),
    activities     text[] NOT NULL DEFAULT '{}',
    contract_stage text NOT NULL CHECK (contract_stage IN ('data_collection', 'business_review', 'discussion',
                       'draft_contract', 'negotiation', 'signed')),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    version        bigint NOT NULL DEFAULT 1,
    CONSTRAINT account_plans_customer_year_key UNIQUE (customer_id, year)
);

CREATE TABLE customers.plan_targets (
    plan_id      uuid NOT NULL REFERENCES customers.account_plans (id) ON DELETE CASCADE,
    position     integer NOT NULL,
    description  text NOT NULL CHECK (description <> ''),
    amount_minor bigint,
    currency     text,
    PRIMARY KEY (plan_id, position)
);

CREATE TABLE customers.plan_reviews (
    plan_id     uuid NOT NULL REFERENCES customers.account_plans (id) ON DELETE CASCADE,
    quarter     smallint NOT NULL CHECK (quarter BETWEEN 1 AND 4),
    summary     text NOT NULL CHECK (summary <> ''),
    reviewed_by text NOT NULL,
    reviewed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, quarter)
);

-- Events written in the same transaction as the change they describe; the
-- events issue publishes them in `seq` order.
CREATE TABLE customers.outbox (
    seq          bigserial PRIMARY KEY,
    id           uuid NOT NULL UNIQUE,
    event_type   text NOT NULL,
    aggregate_id uuid NOT NULL,
    payload      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);

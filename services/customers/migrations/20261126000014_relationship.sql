-- CUS-11 termination saga and CUS-8 behaviour figures with the tier policy,
-- fed by the other services' events (SPEC X-2).

CREATE TABLE customers.terminations (
    id                  uuid PRIMARY KEY,
    customer_id         uuid NOT NULL REFERENCES customers.customers (id),
    reason              text NOT NULL CHECK (reason IN ('stopped_buying', 'rules_or_ethics', 'offer_no_longer_fits',
                                                        'relationship_broken', 'market_exit')),
    note                text NOT NULL CHECK (note <> ''),
    notice_days         integer NOT NULL CHECK (notice_days BETWEEN 0 AND 365),
    state               text NOT NULL CHECK (state IN ('requested', 'notice', 'clearing', 'terminated', 'rejected')),
    requested_by        text NOT NULL,
    requested_at        timestamptz NOT NULL,
    decided_by          text,
    decided_at          timestamptz,
    rejection_reason    text,
    notice_ends_at      timestamptz,
    clearing_started_at timestamptz,
    terminated_at       timestamptz,
    version             bigint NOT NULL DEFAULT 1
);
-- One termination under way per customer.
CREATE UNIQUE INDEX terminations_one_open_idx ON customers.terminations (customer_id)
    WHERE state IN ('requested', 'notice', 'clearing');
-- What the saga job looks for: notices that have run out.
CREATE INDEX terminations_notice_idx ON customers.terminations (notice_ends_at) WHERE state = 'notice';

-- Each participant's latest report on its part.
CREATE TABLE customers.termination_steps (
    termination_id uuid NOT NULL REFERENCES customers.terminations (id),
    participant    text NOT NULL CHECK (participant IN ('dispatch', 'complaints', 'billing')),
    outcome        text NOT NULL CHECK (outcome IN ('pending', 'done', 'held')),
    code           text NOT NULL DEFAULT '',
    reason         text NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (termination_id, participant)
);

-- One row per billing or complaints event that counts towards behaviour;
-- figures are aggregated on read over a window.
CREATE TABLE customers.behaviour_facts (
    event_id     uuid PRIMARY KEY,
    customer_id  uuid NOT NULL REFERENCES customers.customers (id),
    kind         text NOT NULL CHECK (kind IN ('purchase', 'payment', 'credit', 'complaint')),
    amount_minor bigint NOT NULL DEFAULT 0,
    currency     text NOT NULL DEFAULT '',
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX behaviour_facts_customer_idx ON customers.behaviour_facts (customer_id, occurred_at);

-- The tier policy: one row.
CREATE TABLE customers.tier_policy (
    id                         boolean PRIMARY KEY DEFAULT true CHECK (id),
    automatic                  boolean NOT NULL,
    currency                   text NOT NULL,
    key_min_minor              bigint NOT NULL CHECK (key_min_minor > 0),
    vip_min_minor              bigint NOT NULL,
    max_complaints_for_upgrade integer NOT NULL CHECK (max_complaints_for_upgrade >= 0),
    updated_by                 text NOT NULL,
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    CHECK (vip_min_minor > key_min_minor)
);
-- Off until an admin turns it on: 100 000 CNY a year makes a key customer,
-- 500 000 CNY with at most 2 complaints a VIP.
INSERT INTO customers.tier_policy (automatic, currency, key_min_minor, vip_min_minor, max_complaints_for_upgrade, updated_by)
VALUES (false, 'CNY', 10000000, 50000000, 2, 'migration');

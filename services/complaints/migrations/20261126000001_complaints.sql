-- Complaints (CMP-1..CMP-9). Vocabularies are stored as text with CHECKs so
-- reports read plainly in SQL.

CREATE TABLE complaints.complaints (
    id                  uuid PRIMARY KEY,
    -- CMP-<year>-<6 digits>; year and seq kept for ordering and checks.
    number              text NOT NULL,
    year                integer NOT NULL,
    seq                 integer NOT NULL CHECK (seq > 0),
    customer_id         uuid NOT NULL,
    -- Copied from the customers service at intake (its values then).
    customer_name       text NOT NULL,
    service_level       text NOT NULL CHECK (service_level IN ('general', 'key', 'special')),
    customer_tier       text NOT NULL CHECK (customer_tier IN ('potential', 'general', 'key', 'vip')),
    channel             text NOT NULL CHECK (channel IN ('phone', 'email', 'letter', 'in_person', 'web', 'social_media')),
    category            text NOT NULL CHECK (category IN ('service_attitude', 'service_quality', 'product_function',
                            'billing', 'field_work', 'test_result')),
    department          text NOT NULL CHECK (department <> ''),
    urgency             text NOT NULL CHECK (urgency IN ('normal', 'urgent')),
    description         text NOT NULL CHECK (description <> ''),
    work_order_ids      text[] NOT NULL DEFAULT '{}',
    invoice_ids         text[] NOT NULL DEFAULT '{}',
    report_ids          text[] NOT NULL DEFAULT '{}',
    report_received_on  date,
    state               text NOT NULL CHECK (state IN ('registered', 'accepted', 'rejected', 'investigating',
                            'resolved', 'answered', 'closed')),
    escalation_level    text NOT NULL CHECK (escalation_level IN ('department', 'office', 'senior_management')),
    rejection_reason    text CHECK (rejection_reason IN ('appeal_window_closed', 'not_a_complaint', 'duplicate',
                            'out_of_scope', 'insufficient_information')),
    rejection_note      text NOT NULL DEFAULT '',
    -- The current investigation round (0 before acceptance).
    round               integer NOT NULL DEFAULT 0,
    reopen_count        integer NOT NULL DEFAULT 0,
    registered_by       text NOT NULL,
    registered_at       timestamptz NOT NULL,
    accepted_by         text,
    accepted_at         timestamptz,
    rejected_by         text,
    rejected_at         timestamptz,
    closed_at           timestamptz,
    updated_at          timestamptz NOT NULL,
    version             bigint NOT NULL DEFAULT 1,
    CONSTRAINT complaints_number_key UNIQUE (number),
    CONSTRAINT complaints_year_seq_key UNIQUE (year, seq),
    CONSTRAINT complaints_rejected_has_reason CHECK ((state = 'rejected') = (rejection_reason IS NOT NULL))
);
CREATE INDEX complaints_customer_idx ON complaints.complaints (customer_id, id);
CREATE INDEX complaints_state_idx ON complaints.complaints (state, id);
CREATE INDEX complaints_registered_idx ON complaints.complaints (registered_at);

-- CMP-1 numbering: one row per year, incremented in the intake transaction,
-- so numbers are gap-free (a rolled-back intake rolls its number back).
CREATE TABLE complaints.number_counters (
    year integer PRIMARY KEY,
    last integer NOT NULL CHECK (last > 0)
);

-- CMP-4/CMP-7: every investigation round keeps its findings, answer and
-- feedback; unsatisfied feedback opens the next round.
CREATE TABLE complaints.rounds (
    complaint_id             uuid NOT NULL REFERENCES complaints.complaints (id),
    number                   integer NOT NULL CHECK (number > 0),
    opened_at                timestamptz NOT NULL,
    answer_due_at            timestamptz NOT NULL,
    committed_answer_at      timestamptz,
    investigated_by          text,
    investigation_started_at timestamptz,
    verdict                  text CHECK (verdict IN ('justified', 'unjustified')),
    facts                    text NOT NULL DEFAULT '',
    root_cause               text NOT NULL DEFAULT '',
    corrective_actions       text NOT NULL DEFAULT '',
    preventive_actions       text NOT NULL DEFAULT '',
    resolved_by              text,
    resolved_at              timestamptz,
    -- CMP-5 review and re-test (NULL records_review: none recorded).
    records_review           text,
    retested                 boolean NOT NULL DEFAULT false,
    testers                  text[] NOT NULL DEFAULT '{}',
    retest_outcome           text CHECK (retest_outcome IN ('upheld', 'amended')),
    revoked_report_id        text,
    corrected_report_id      text,
    retest_recorded_by       text,
    retest_recorded_at       timestamptz,
    amendment_approved_by    text,
    amendment_approved_at    timestamptz,
    answer                   text NOT NULL DEFAULT '',
    answered_by              text,
    answered_at              timestamptz,
    satisfied                boolean,
    feedback                 text NOT NULL DEFAULT '',
    feedback_by              text,
    feedback_at              timestamptz,
    -- Set by the escalation job: an overdue round escalates once (CMP-6).
    overdue_escalated_at     timestamptz,
    PRIMARY KEY (complaint_id, number)
);
CREATE INDEX rounds_open_due_idx ON complaints.rounds (answer_due_at) WHERE answered_at IS NULL;

-- CMP-4: escalation history.
CREATE TABLE complaints.escalations (
    id           uuid PRIMARY KEY,
    complaint_id uuid NOT NULL REFERENCES complaints.complaints (id),
    round        integer NOT NULL,
    from_level   text NOT NULL,
    to_level     text NOT NULL,
    reason       text NOT NULL,
    team_members text[] NOT NULL DEFAULT '{}',
    escalated_by text NOT NULL,
    escalated_at timestamptz NOT NULL
);
CREATE INDEX escalations_complaint_idx ON complaints.escalations (complaint_id, escalated_at);

-- CMP-8: at most one compensation per complaint.
CREATE TABLE complaints.compensations (
    complaint_id  uuid PRIMARY KEY REFERENCES complaints.complaints (id),
    amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
    currency_code text NOT NULL CHECK (currency_code ~ '^[A-Z]{3}$'),
    reason        text NOT NULL,
    proposed_by   text NOT NULL,
    proposed_at   timestamptz NOT NULL,
    approved_by   text,
    approved_at   timestamptz
);

-- CMP-9: every step, who and when.
CREATE TABLE complaints.history (
    id           uuid PRIMARY KEY,
    complaint_id uuid NOT NULL REFERENCES complaints.complaints (id),
    action       text NOT NULL,
    from_state   text,
    to_state     text NOT NULL,
    actor        text NOT NULL,
    at           timestamptz NOT NULL,
    note         text NOT NULL DEFAULT ''
);
CREATE INDEX history_complaint_idx ON complaints.history (complaint_id, id);

-- CMP-6: answer deadline per service level × urgency, changed by admins.
CREATE TABLE complaints.deadline_policies (
    service_level text NOT NULL CHECK (service_level IN ('general', 'key', 'special')),
    urgency       text NOT NULL CHECK (urgency IN ('normal', 'urgent')),
    unit          text NOT NULL CHECK (unit IN ('calendar_days', 'working_days', 'working_hours')),
    amount        integer NOT NULL CHECK (amount > 0),
    updated_by    text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service_level, urgency)
);
-- SPEC CMP-6 defaults; key and special customers get tighter targets.
INSERT INTO complaints.deadline_policies (service_level, urgency, unit, amount, updated_by) VALUES
    ('general', 'normal', 'calendar_days', 15, 'migration'),
    ('general', 'urgent', 'working_days', 3, 'migration'),
    ('key', 'normal', 'calendar_days', 10, 'migration'),
    ('key', 'urgent', 'working_days', 2, 'migration'),
    ('special', 'normal', 'working_days', 5, 'migration'),
    ('special', 'urgent', 'working_hours', 8, 'migration');

-- Events for other services, written in the transaction of the change they
-- report; the events work publishes them (CMP-3 notification, CMP-8).
CREATE TABLE complaints.outbox (
    id           uuid PRIMARY KEY,
    type         text NOT NULL,
    aggregate_id uuid NOT NULL,
    payload      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_occurred_idx ON complaints.outbox (occurred_at);

-- Idempotency keys of mutating RPCs (platform::idempotency).
CREATE TABLE complaints.idempotency_keys (
    request_id uuid PRIMARY KEY,
    principal  text NOT NULL,
    method     text NOT NULL,
    request    bytea NOT NULL,
    response   bytea,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_idx ON complaints.idempotency_keys (created_at);

-- Customers (CUS-1), ownership (CUS-3), classification (CUS-8), lifecycle (CUS-9).
-- pg_trgm powers duplicate detection (CUS-2) and fuzzy search; trigrams work
-- on Chinese text in a UTF-8 database.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE customers.customers (
    id                  uuid PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('person', 'organization')),
    display_name        text NOT NULL CHECK (display_name <> ''),
    -- normalize_for_match(display_name): trimmed, width-folded, case-folded.
    name_norm           text NOT NULL,
    legal_name          text NOT NULL DEFAULT '',
    legal_name_norm     text NOT NULL DEFAULT '',
    -- Normalised (upper case, no separators); the first registration wins (CUS-3).
    registration_number text,
    industry            text NOT NULL DEFAULT '',
    size_band           text CHECK (size_band IN ('micro', 'small', 'medium', 'large')),
    region              text NOT NULL DEFAULT '',
    summary             text NOT NULL DEFAULT '',
    source_channel      text CHECK (source_channel IN ('trade_show', 'industry_press', 'internet',
                            'industry_association', 'retail_brand_listing', 'partner_referral',
                            'marketing_campaign', 'walk_in')),
    tags                text[] NOT NULL DEFAULT '{}',
    phone               text,          -- E.164
    email               text,          -- lower case
    owner_id            text NOT NULL,
    branch              text NOT NULL DEFAULT '',
    grade               text NOT NULL CHECK (grade IN ('A', 'B', 'C')),
    value_tier          text NOT NULL CHECK (value_tier IN ('potential', 'general', 'key', 'vip')),
    service_level       text NOT NULL CHECK (service_level IN ('general', 'key', 'special')),
    stage               text NOT NULL CHECK (stage IN ('prospect', 'active', 'dormant', 'terminated')),
    referred_by         uuid REFERENCES customers.customers (id),
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             bigint NOT NULL DEFAULT 1,
    CONSTRAINT customers_registration_number_key UNIQUE (registration_number),
    CONSTRAINT customers_not_self_referred CHECK (referred_by IS DISTINCT FROM id)
);

CREATE INDEX customers_owner_idx ON customers.customers (owner_id, id);
CREATE INDEX customers_branch_idx ON customers.customers (branch, id);
CREATE INDEX customers_phone_idx ON customers.customers (phone) WHERE phone IS NOT NULL;
CREATE INDEX customers_email_idx ON customers.customers (email) WHERE email IS NOT NULL;
CREATE INDEX customers_tags_idx ON customers.customers USING gin (tags);
CREATE INDEX customers_name_trgm_idx ON customers.customers USING gin (name_norm gin_trgm_ops);
CREATE INDEX customers_legal_name_trgm_idx ON customers.customers USING gin (legal_name_norm gin_trgm_ops);
CREATE INDEX customers_phone_trgm_idx ON customers.customers USING gin (phone gin_trgm_ops);

CREATE TABLE customers.contacts (
    id             uuid PRIMARY KEY,
    customer_id    uuid NOT NULL REFERENCES customers.customers (id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (name <> ''),
    position       text NOT NULL DEFAULT '',
    phones         text[] NOT NULL DEFAULT '{}',
    email          text,
    decision_maker boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_customer_idx ON customers.contacts (customer_id, id);
CREATE INDEX contacts_phones_idx ON customers.contacts USING gin (phones);
CREATE INDEX contacts_email_idx ON customers.contacts (email) WHERE email IS NOT NULL;

CREATE TABLE customers.addresses (
    id          uuid PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES customers.customers (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('head_office', 'branch', 'service_site', 'home')),
    province    text NOT NULL DEFAULT '',
    city        text NOT NULL DEFAULT '',
    district    text NOT NULL DEFAULT '',
    street      text NOT NULL CHECK (street <> ''),
    postal_code text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX addresses_customer_idx ON customers.addresses (customer_id, id);

-- History is appended, never updated (CUS-3 owners, CUS-8 classification, CUS-9 stages).
CREATE TABLE customers.ownership_history (
    id          bigserial PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES customers.customers (id),
    owner_id    text NOT NULL,
    branch      text NOT NULL,
    assigned_by text NOT NULL,
    reason      text NOT NULL,
    assigned_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ownership_history_customer_idx ON customers.ownership_history (customer_id, id);

CREATE TABLE customers.classification_history (
    id            bigserial PRIMARY KEY,
    customer_id   uuid NOT NULL REFERENCES customers.customers (id),
    grade         text NOT NULL,
    value_tier    text NOT NULL,
    service_level text NOT NULL,
    changed_by    text NOT NULL,
    reason        text NOT NULL,
    changed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX classification_history_customer_idx ON customers.classification_history (customer_id, id);

CREATE TABLE customers.stage_history (
    id          bigserial PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES customers.customers (id),
    from_stage  text,
    to_stage    text NOT NULL,
    changed_by  text NOT NULL,
    reason      text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stage_history_customer_idx ON customers.stage_history (customer_id, id);

-- Idempotency keys of mutating RPCs (platform::idempotency).
CREATE TABLE customers.idempotency_keys (
    request_id uuid PRIMARY KEY,
    principal  text NOT NULL,
    method     text NOT NULL,
    request    bytea NOT NULL,
    response   bytea,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_idx ON customers.idempotency_keys (created_at);

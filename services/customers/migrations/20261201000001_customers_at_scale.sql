-- Customers at a million (CUS-1, CUS-2, CUS-13, CUS-14): index-driven search
-- and duplicate detection, contact points in one table, set-based audit of
-- inserts, and bulk imports.

-- Search and duplicate terms, computed by the service on every write
-- (crm_domain::search; Chinese names have no spaces, so pg_trgm's words do
-- not work for them):
--   search_grams  character bigrams and skip-bigrams of the display and
--                 legal names, Latin word trigrams, pinyin syllable pairs
--                 (py:hua run) and initials triples (pi:hrr): name search,
--                 typos, typed pinyin;
--   core_grams    bigrams of the distinctive part of the names (without the
--                 city and the legal form): duplicate similarity (Dice);
--   name_core     that distinctive part;
--   search_text   pinyin (full and initials) and the Latin words of the
--                 names, to score candidates (not indexed: a trigram index
--                 on it cost more than half of every insert, measured);
--   search_version which version of the terms the row holds; rows of an
--                 older version are re-indexed in the background.
ALTER TABLE customers.customers
    ADD COLUMN search_grams   text[]   NOT NULL DEFAULT '{}',
    ADD COLUMN core_grams     text[]   NOT NULL DEFAULT '{}',
    ADD COLUMN name_core      text     NOT NULL DEFAULT '',
    ADD COLUMN search_text    text     NOT NULL DEFAULT '',
    ADD COLUMN search_version smallint NOT NULL DEFAULT 0,
    -- CUS-14: the import and row a customer came from; a re-sent import
    -- finds its rows here and creates nothing twice.
    ADD COLUMN import_id      uuid,
    ADD COLUMN import_row     bigint,
    -- The read model of GetCustomer: the customer as the API returns it
    -- (crm.customers.v1.Customer, contacts and addresses included), written
    -- with every change; `doc_version` is the `version` it was built from,
    -- so a document older than the row is never served.
    ADD COLUMN doc            bytea,
    ADD COLUMN doc_version    bigint;

CREATE UNIQUE INDEX customers_import_row_key ON customers.customers (import_id, import_row)
    WHERE import_id IS NOT NULL;
CREATE INDEX customers_search_grams_idx ON customers.customers USING gin (search_grams) WITH (fastupdate = on);
CREATE INDEX customers_core_grams_idx ON customers.customers USING gin (core_grams) WITH (fastupdate = on);
CREATE INDEX customers_region_core_idx ON customers.customers (region, name_core);
CREATE INDEX customers_stale_search_idx ON customers.customers (search_version);

-- Replaced: names are found through search_grams, phones and emails through
-- contact_points.
DROP INDEX customers.customers_name_trgm_idx;
DROP INDEX customers.customers_legal_name_trgm_idx;
DROP INDEX customers.customers_phone_trgm_idx;
DROP INDEX customers.customers_phone_idx;
DROP INDEX customers.customers_email_idx;
DROP INDEX customers.contacts_phones_idx;
DROP INDEX customers.contacts_email_idx;

-- Every phone and email a customer is reached by, its own and its
-- contacts', in canonical form (E.164 without an extension: the line
-- is what reaches the customer; lower-case email). Kept by triggers,
-- so no code path can forget it: exact lookups (duplicates, CUS-2), prefix
-- and suffix lookups (search by a fragment: the first or last digits of a
-- number, the start of an address or its domain).
CREATE TABLE customers.contact_points (
    customer_id uuid NOT NULL,
    -- The customer's own id, or the contact's.
    source_id   uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('phone', 'email')),
    value       text NOT NULL
);
CREATE INDEX contact_points_value_idx ON customers.contact_points (value text_pattern_ops);
CREATE INDEX contact_points_reversed_idx ON customers.contact_points (reverse(value) text_pattern_ops);
CREATE INDEX contact_points_source_idx ON customers.contact_points (source_id);
-- A candidate's own points, gathered for scoring.
CREATE INDEX contact_points_customer_idx ON customers.contact_points (customer_id);

INSERT INTO customers.contact_points (customer_id, source_id, kind, value)
SELECT id, id, 'phone', split_part(phone, ';', 1) FROM customers.customers WHERE phone IS NOT NULL
UNION ALL
SELECT id, id, 'email', email FROM customers.customers WHERE email IS NOT NULL
UNION ALL
SELECT customer_id, id, 'phone', split_part(unnest(phones), ';', 1) FROM customers.contacts
UNION ALL
SELECT customer_id, id, 'email', email FROM customers.contacts WHERE email IS NOT NULL;

CREATE FUNCTION customers.points_of_new_customers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customers.contact_points (customer_id, source_id, kind, value)
    SELECT id, id, 'phone', split_part(phone, ';', 1) FROM new_rows WHERE phone IS NOT NULL
    UNION ALL
    SELECT id, id, 'email', email FROM new_rows WHERE email IS NOT NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER contact_points_customers_insert AFTER INSERT ON customers.customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customers.points_of_new_customers();

CREATE FUNCTION customers.points_of_changed_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customers.contact_points WHERE source_id = NEW.id;
    INSERT INTO customers.contact_points (customer_id, source_id, kind, value)
    SELECT NEW.id, NEW.id, 'phone', split_part(NEW.phone, ';', 1) WHERE NEW.phone IS NOT NULL
    UNION ALL
    SELECT NEW.id, NEW.id, 'email', NEW.email WHERE NEW.email IS NOT NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER contact_points_customers_update AFTER UPDATE OF phone, email ON customers.customers
    FOR EACH ROW WHEN (OLD.phone IS DISTINCT FROM NEW.phone OR OLD.email IS DISTINCT FROM NEW.email)
    EXECUTE FUNCTION customers.points_of_changed_customer();

CREATE FUNCTION customers.points_of_new_contacts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customers.contact_points (customer_id, source_id, kind, value)
    SELECT customer_id, id, 'phone', split_part(unnest(phones), ';', 1) FROM new_rows
    UNION ALL
    SELECT customer_id, id, 'email', email FROM new_rows WHERE email IS NOT NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER contact_points_contacts_insert AFTER INSERT ON customers.contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customers.points_of_new_contacts();

CREATE FUNCTION customers.points_of_changed_contact() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customers.contact_points WHERE source_id = NEW.id;
    INSERT INTO customers.contact_points (customer_id, source_id, kind, value)
    SELECT NEW.customer_id, NEW.id, 'phone', split_part(unnest(NEW.phones), ';', 1)
    UNION ALL
    SELECT NEW.customer_id, NEW.id, 'email', NEW.email WHERE NEW.email IS NOT NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER contact_points_contacts_update AFTER UPDATE ON customers.contacts
    FOR EACH ROW WHEN (OLD.phones IS DISTINCT FROM NEW.phones OR OLD.email IS DISTINCT FROM NEW.email
                       OR OLD.customer_id IS DISTINCT FROM NEW.customer_id)
    EXECUTE FUNCTION customers.points_of_changed_contact();

CREATE FUNCTION customers.points_of_removed_contacts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customers.contact_points p USING old_rows o WHERE p.source_id = o.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER contact_points_contacts_delete AFTER DELETE ON customers.contacts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION customers.points_of_removed_contacts();

-- CUS-13 audit: inserts and deletes are recorded per statement (one
-- set-based insert however many rows: bulk imports stay fast), updates per
-- row with the names of the columns that changed. Columns the service
-- derives from others (search terms, normalised names) are not changes of
-- their own: an update that touches only those records nothing.
DROP TRIGGER audit_customers ON customers.customers;
DROP TRIGGER audit_contacts ON customers.contacts;
DROP TRIGGER audit_addresses ON customers.addresses;
DROP TRIGGER audit_interactions ON customers.interactions;
DROP TRIGGER audit_follow_ups ON customers.follow_ups;
DROP TRIGGER audit_visits ON customers.visits;
DROP TRIGGER audit_surveys ON customers.surveys;
DROP TRIGGER audit_account_plans ON customers.account_plans;

CREATE OR REPLACE FUNCTION customers.audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rec      jsonb;
    customer uuid;
    cols     text[];
BEGIN
    rec := to_jsonb(NEW);
    IF TG_TABLE_NAME = 'customers' THEN
        customer := (rec ->> 'id')::uuid;
    ELSE
        customer := (rec ->> 'customer_id')::uuid;
    END IF;
    SELECT array_agg(n.key ORDER BY n.key) INTO cols
    FROM jsonb_each(rec) n JOIN jsonb_each(to_jsonb(OLD)) o USING (key)
    WHERE n.value IS DISTINCT FROM o.value
      AND n.key NOT IN ('search_grams', 'core_grams', 'name_core', 'search_text', 'search_version',
                        'name_norm', 'legal_name_norm', 'updated_at', 'version', 'doc', 'doc_version');
    IF cols IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO customers.audit_log (actor, action, operation, table_name, customer_id, row_id, changed, request_id)
    VALUES (
        coalesce(nullif(current_setting('crm.actor', true), ''), session_user),
        coalesce(nullif(current_setting('crm.action', true), ''), 'direct'),
        'update', TG_TABLE_NAME, customer, rec ->> 'id', cols,
        nullif(current_setting('crm.request_id', true), ''));
    RETURN NULL;
END
$$;

CREATE FUNCTION customers.audit_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor  text := coalesce(nullif(current_setting('crm.actor', true), ''), session_user);
    action text := coalesce(nullif(current_setting('crm.action', true), ''), 'direct');
    req    text := nullif(current_setting('crm.request_id', true), '');
BEGIN
    -- Transition tables are named by the trigger; TG_ARGV[0] says whether
    -- the customer is the row itself or the row's customer_id.
    IF TG_OP = 'INSERT' AND TG_ARGV[0] = 'self' THEN
        INSERT INTO customers.audit_log (actor, action, operation, table_name, customer_id, row_id, request_id)
        SELECT actor, action, 'insert', TG_TABLE_NAME, n.id, n.id::text, req FROM new_rows n;
    ELSIF TG_OP = 'INSERT' THEN
        EXECUTE format('INSERT INTO customers.audit_log (actor, action, operation, table_name, customer_id, row_id, request_id) '
                       'SELECT $1, $2, ''insert'', $3, n.customer_id, n.id::text, $4 FROM new_rows n')
            USING actor, action, TG_TABLE_NAME, req;
    ELSIF TG_ARGV[0] = 'self' THEN
        INSERT INTO customers.audit_log (actor, action, operation, table_name, customer_id, row_id, request_id)
        SELECT actor, action, 'delete', TG_TABLE_NAME, o.id, o.id::text, req FROM old_rows o;
    ELSE
        EXECUTE format('INSERT INTO customers.audit_log (actor, action, operation, table_name, customer_id, row_id, request_id) '
                       'SELECT $1, $2, ''delete'', $3, o.customer_id, o.id::text, $4 FROM old_rows o')
            USING actor, action, TG_TABLE_NAME, req;
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'contacts', 'addresses', 'interactions', 'follow_ups', 'visits',
                             'surveys', 'account_plans']
    LOOP
        EXECUTE format('CREATE TRIGGER audit_%1$s_insert AFTER INSERT ON customers.%1$I REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION customers.audit_rows(%2$L)',
                       t, CASE WHEN t = 'customers' THEN 'self' ELSE 'child' END);
        EXECUTE format('CREATE TRIGGER audit_%1$s_delete AFTER DELETE ON customers.%1$I REFERENCING OLD TABLE AS old_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION customers.audit_rows(%2$L)',
                       t, CASE WHEN t = 'customers' THEN 'self' ELSE 'child' END);
        -- Writing the read document (doc) is not a change of the customer.
        EXECUTE format('CREATE TRIGGER audit_%1$s_update AFTER UPDATE ON customers.%1$I FOR EACH ROW %2$s '
                       'EXECUTE FUNCTION customers.audit_change()',
                       t, CASE WHEN t = 'customers' THEN 'WHEN (OLD.doc IS NOT DISTINCT FROM NEW.doc)' ELSE '' END);
    END LOOP;
END
$$;

-- CUS-14 bulk imports: one row per import, keyed by the client's request id.
-- Progress is committed with each batch, so a re-sent import resumes after
-- the last committed row; the finished summary is replayed as is.
CREATE TABLE customers.imports (
    request_id  uuid PRIMARY KEY,
    principal   text NOT NULL,
    -- The encoded options of the first message: a re-send must match them.
    options     bytea NOT NULL,
    -- Rows settled so far (row numbers 1..rows_done).
    rows_done   bigint NOT NULL DEFAULT 0,
    -- The encoded ImportCustomersResponse so far: counts and the first
    -- errors, committed with each batch.
    summary     bytea NOT NULL,
    finished    boolean NOT NULL DEFAULT false,
    start_time  timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);

-- The read document must never say less than the row: any change that does
-- not write the document itself (an UPDATE by hand, a job that forgets it)
-- invalidates it, and the next read rebuilds it. Changes of the search
-- terms alone (the background re-index) leave it.
CREATE FUNCTION customers.invalidate_doc() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ignored text[] := ARRAY['doc', 'doc_version', 'search_grams', 'core_grams', 'name_core', 'search_text',
                            'search_version'];
BEGIN
    IF (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN
        NEW.doc_version := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER customers_invalidate_doc BEFORE UPDATE ON customers.customers
    FOR EACH ROW WHEN (OLD.doc IS NOT DISTINCT FROM NEW.doc AND OLD.doc_version IS NOT DISTINCT FROM NEW.doc_version)
    EXECUTE FUNCTION customers.invalidate_doc();

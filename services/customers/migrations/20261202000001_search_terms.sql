-- Search terms in a table of their own (CUS-1 at a million customers).
--
-- A GIN index over customers.search_grams answers "which rows hold this
-- term" only through a bitmap heap scan: every candidate costs a visit to
-- its (wide) customer row, so one capped lookup of a common term took
-- 31 ms at a million rows, and a salesperson's scope was filtered on the
-- heap after the fact. Here each (term, customer) is one narrow row, keyed
-- by term, then owner, so a lookup is an index-only range scan that stops
-- at its cap: the admin's first N holders of a term, a salesperson's own
-- (owner in the key) or a branch's (branch in the index, filtered before
-- any heap visit). Terms, owners and branches are stored as hashes: a
-- collision can only add a candidate, and candidates are read back from
-- customers.customers, in the caller's scope, before they are scored.
--
-- The table is kept by triggers from customers.search_grams (the terms the
-- service computes), so no code path can forget it. Merged-away customers
-- have no terms. Terms are now those of the distinctive part of each name
-- (without city and legal form: 有限公司 was in 25% of all rows and found
-- nothing) and the name's leading place: SEARCH_VERSION 2 re-indexes older
-- rows in the background.
CREATE TABLE customers.search_terms (
    term        bigint NOT NULL,  -- hashtextextended(term, 0)
    owner_h     integer NOT NULL, -- hashtext(owner_id)
    branch_h    integer NOT NULL, -- hashtext(branch)
    customer_id uuid NOT NULL
) WITH (autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_vacuum_scale_factor = 0.02);

INSERT INTO customers.search_terms (term, owner_h, branch_h, customer_id)
SELECT hashtextextended(t, 0), hashtext(c.owner_id), hashtext(c.branch), c.id
FROM customers.customers c CROSS JOIN LATERAL unnest(c.search_grams) t
WHERE c.merged_into IS NULL;

CREATE INDEX search_terms_lookup_idx ON customers.search_terms (term, owner_h, customer_id) INCLUDE (branch_h);

CREATE FUNCTION customers.terms_of_new_customers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customers.search_terms (term, owner_h, branch_h, customer_id)
    SELECT hashtextextended(t, 0), hashtext(n.owner_id), hashtext(n.branch), n.id
    FROM new_rows n CROSS JOIN LATERAL unnest(n.search_grams) t
    WHERE n.merged_into IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER search_terms_customers_insert AFTER INSERT ON customers.customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customers.terms_of_new_customers();

-- The old terms are found through the lookup index itself (term, owner,
-- customer), so the table needs no second index.
CREATE FUNCTION customers.terms_of_changed_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM customers.search_terms s
        WHERE s.term = ANY (ARRAY(SELECT hashtextextended(t, 0) FROM unnest(OLD.search_grams) t))
          AND s.owner_h = hashtext(OLD.owner_id) AND s.customer_id = OLD.id;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.merged_into IS NULL THEN
        INSERT INTO customers.search_terms (term, owner_h, branch_h, customer_id)
        SELECT hashtextextended(t, 0), hashtext(NEW.owner_id), hashtext(NEW.branch), NEW.id
        FROM unnest(NEW.search_grams) t;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER search_terms_customers_update AFTER UPDATE OF search_grams, owner_id, branch, merged_into
    ON customers.customers FOR EACH ROW
    WHEN (OLD.search_grams IS DISTINCT FROM NEW.search_grams OR OLD.owner_id IS DISTINCT FROM NEW.owner_id
          OR OLD.branch IS DISTINCT FROM NEW.branch OR OLD.merged_into IS DISTINCT FROM NEW.merged_into)
    EXECUTE FUNCTION customers.terms_of_changed_customer();
CREATE TRIGGER search_terms_customers_delete AFTER DELETE ON customers.customers
    FOR EACH ROW EXECUTE FUNCTION customers.terms_of_changed_customer();

-- Lookups no longer read the GIN index; every insert paid for it.
DROP INDEX customers.customers_search_grams_idx;

-- The re-index job looks only for rows of an older version: a partial
-- index holds just those (all rows at this migration, none written since),
-- instead of an entry per row that every insert paid for. The job's query
-- names the version as a literal so the planner can use it; the next
-- version bump re-creates this index with its own bound.
DROP INDEX customers.customers_stale_search_idx;
CREATE INDEX customers_stale_search_idx ON customers.customers (id) WHERE search_version < 2;

-- A contact point is found for removal through its customer (a customer
-- has a handful), so the index on source_id, which every insert paid for,
-- goes.
DROP INDEX customers.contact_points_source_idx;

CREATE OR REPLACE FUNCTION customers.points_of_changed_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customers.contact_points WHERE customer_id = OLD.id AND source_id = OLD.id;
    INSERT INTO customers.contact_points (customer_id, source_id, kind, value)
    SELECT NEW.id, NEW.id, 'phone', split_part(NEW.phone, ';', 1) WHERE NEW.phone IS NOT NULL
    UNION ALL
    SELECT NEW.id, NEW.id, 'email', NEW.email WHERE NEW.email IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION customers.points_of_changed_contact() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customers.contact_points WHERE customer_id = OLD.customer_id AND source_id = OLD.id;
    INSERT INTO customers.contact_points (customer_id, source_id, kind, value)
    SELECT NEW.customer_id, NEW.id, 'phone', split_part(unnest(NEW.phones), ';', 1)
    UNION ALL
    SELECT NEW.customer_id, NEW.id, 'email', NEW.email WHERE NEW.email IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION customers.points_of_removed_contacts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customers.contact_points p USING old_rows o WHERE p.customer_id = o.customer_id AND p.source_id = o.id;
    RETURN NULL;
END
$$;

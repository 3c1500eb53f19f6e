-- Duplicate detection by name (CUS-2) from a narrow table, as search does
-- (20261202000001). The GIN index over customers.core_grams returned every
-- row sharing a probe gram anywhere in the country and reached each one
-- through its wide customer row before the region was checked: 31 ms at the
-- median per registration at a million rows, more with a common brand.
-- Here each (region, core gram, customer) is one row with the number of
-- grams of the customer's cores, keyed by region then gram: counting the
-- grams a customer shares with the new name, in its region, is an
-- index-only scan, and Dice follows from the count and the two sizes, so
-- every customer above the threshold is found with no row read but theirs.
-- Hashes can only add a candidate; candidates are read back and checked on
-- their real grams.
CREATE TABLE customers.core_terms (
    region_h    integer NOT NULL,  -- hashtext(region)
    gram        bigint NOT NULL,   -- hashtextextended(gram, 0)
    customer_id uuid NOT NULL,
    grams       smallint NOT NULL  -- cardinality(core_grams)
) WITH (autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_vacuum_scale_factor = 0.02);

INSERT INTO customers.core_terms (region_h, gram, customer_id, grams)
SELECT hashtext(c.region), hashtextextended(g, 0), c.id, least(cardinality(c.core_grams), 32767)
FROM customers.customers c CROSS JOIN LATERAL unnest(c.core_grams) g
WHERE c.merged_into IS NULL;

CREATE INDEX core_terms_lookup_idx ON customers.core_terms (region_h, gram, customer_id) INCLUDE (grams);

CREATE FUNCTION customers.core_terms_of_new_customers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customers.core_terms (region_h, gram, customer_id, grams)
    SELECT hashtext(n.region), hashtextextended(g, 0), n.id, least(cardinality(n.core_grams), 32767)
    FROM new_rows n CROSS JOIN LATERAL unnest(n.core_grams) g
    WHERE n.merged_into IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER core_terms_customers_insert AFTER INSERT ON customers.customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customers.core_terms_of_new_customers();

CREATE FUNCTION customers.core_terms_of_changed_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM customers.core_terms t
        WHERE t.region_h = hashtext(OLD.region)
          AND t.gram = ANY (ARRAY(SELECT hashtextextended(g, 0) FROM unnest(OLD.core_grams) g))
          AND t.customer_id = OLD.id;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.merged_into IS NULL THEN
        INSERT INTO customers.core_terms (region_h, gram, customer_id, grams)
        SELECT hashtext(NEW.region), hashtextextended(g, 0), NEW.id, least(cardinality(NEW.core_grams), 32767)
        FROM unnest(NEW.core_grams) g;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER core_terms_customers_update AFTER UPDATE OF core_grams, region, merged_into
    ON customers.customers FOR EACH ROW
    WHEN (OLD.core_grams IS DISTINCT FROM NEW.core_grams OR OLD.region IS DISTINCT FROM NEW.region
          OR OLD.merged_into IS DISTINCT FROM NEW.merged_into)
    EXECUTE FUNCTION customers.core_terms_of_changed_customer();
CREATE TRIGGER core_terms_customers_delete AFTER DELETE ON customers.customers
    FOR EACH ROW EXECUTE FUNCTION customers.core_terms_of_changed_customer();

DROP INDEX customers.customers_core_grams_idx;

-- The statement triggers that copy a batch's terms (an import writes a
-- thousand customers per statement) insert them in index order: a btree
-- takes sorted entries several times faster than entries in customer
-- order, which land on a different leaf page each time. Measured at 300 000
-- customers, 230 000 term rows: 1.4-1.9 s sorted, 3.4-7.9 s unsorted.
CREATE OR REPLACE FUNCTION customers.terms_of_new_customers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customers.search_terms (term, owner_h, branch_h, customer_id)
    SELECT hashtextextended(t, 0) AS term, hashtext(n.owner_id) AS owner_h, hashtext(n.branch), n.id
    FROM new_rows n CROSS JOIN LATERAL unnest(n.search_grams) t
    WHERE n.merged_into IS NULL
    ORDER BY 1, 2, 4;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION customers.core_terms_of_new_customers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customers.core_terms (region_h, gram, customer_id, grams)
    SELECT hashtext(n.region), hashtextextended(g, 0), n.id, least(cardinality(n.core_grams), 32767)
    FROM new_rows n CROSS JOIN LATERAL unnest(n.core_grams) g
    WHERE n.merged_into IS NULL
    ORDER BY 1, 2, 3;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION customers.points_of_new_customers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customers.contact_points (customer_id, source_id, kind, value)
    SELECT * FROM (
        SELECT id, id, 'phone', split_part(phone, ';', 1) FROM new_rows WHERE phone IS NOT NULL
        UNION ALL
        SELECT id, id, 'email', email FROM new_rows WHERE email IS NOT NULL
    ) p(customer_id, source_id, kind, value)
    ORDER BY value;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION customers.points_of_new_contacts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customers.contact_points (customer_id, source_id, kind, value)
    SELECT * FROM (
        SELECT customer_id, id, 'phone', split_part(unnest(phones), ';', 1) FROM new_rows
        UNION ALL
        SELECT customer_id, id, 'email', email FROM new_rows WHERE email IS NOT NULL
    ) p(customer_id, source_id, kind, value)
    ORDER BY value;
    RETURN NULL;
END
$$;

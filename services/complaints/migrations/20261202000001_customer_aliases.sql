-- CUS-2: customers merged in the customers service. A customer.merged event
-- re-points this service's rows from the merged-away customer to its
-- survivor and leaves the merged id here, so an id that arrives afterwards
-- (a request or an event sent before the merge) resolves to the survivor.
-- (Generated from crates/events/src/aliases.sql.in; a test keeps the copies
-- identical.)
CREATE TABLE complaints.customer_aliases (
    merged_id   uuid PRIMARY KEY,
    survivor_id uuid NOT NULL,
    merged_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_aliases_survivor_idx ON complaints.customer_aliases (survivor_id);

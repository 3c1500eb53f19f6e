-- CUS-11: customers whose termination has started. Their open work orders
-- were cancelled when it started, and no new order is taken for them.
CREATE TABLE dispatch.customer_terminations (
    customer_id uuid PRIMARY KEY,
    saga_id     uuid NOT NULL,
    started_at  timestamptz NOT NULL
);

-- CUS-11, X-2: customers' terminations whose complaints step is not yet done
-- (kept afterwards, with done_at, for the record). A background re-check
-- claims the pending ones with FOR UPDATE SKIP LOCKED, so replicas share them.
CREATE TABLE complaints.pending_terminations (
    saga_id     uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    started_at  timestamptz NOT NULL,
    -- The held reason last reported to the saga; empty before any.
    held_reason text NOT NULL DEFAULT '',
    reported_at timestamptz,
    done_at     timestamptz
);
CREATE INDEX pending_terminations_pending_idx ON complaints.pending_terminations (started_at, saga_id)
    WHERE done_at IS NULL;

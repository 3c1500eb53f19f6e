-- SPEC X-1: this service's outbox as the event feed serves it, and the state
-- of its consumers of the other services' feeds. (Generated from
-- crates/events/src/events.sql.in; a test keeps the copies identical.)

-- Events written before the feed existed carried JSON payloads; they are kept
-- for the record and not served.
ALTER TABLE dispatch.outbox RENAME TO outbox_v0;
ALTER INDEX IF EXISTS dispatch.outbox_pkey RENAME TO outbox_v0_pkey;
ALTER INDEX IF EXISTS dispatch.outbox_id_key RENAME TO outbox_v0_id_key;
ALTER SEQUENCE IF EXISTS dispatch.outbox_seq_seq RENAME TO outbox_v0_seq_seq;

-- `body` is a protobuf crm.events.v1.Event holding the payload. `tx` is the
-- writing transaction: the feed serves rows in (tx, seq) order and only those
-- of transactions older than every running one, so a row that commits late
-- can never land behind a position already served.
CREATE TABLE dispatch.outbox (
    seq            bigserial PRIMARY KEY,
    id             uuid NOT NULL UNIQUE,
    event_type     text NOT NULL,
    aggregate_id   uuid NOT NULL,
    schema_version integer NOT NULL,
    body           bytea NOT NULL,
    occurred_at    timestamptz NOT NULL,
    tx             xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX outbox_delivery_idx ON dispatch.outbox (tx, seq);

-- Wakes the feed's subscribers when the writing transaction commits.
CREATE FUNCTION dispatch.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dispatch_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON dispatch.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION dispatch.outbox_notify();

-- Where each consumer stands on a peer's feed.
CREATE TABLE dispatch.event_cursors (
    source      text PRIMARY KEY,
    after_seq   bigint NOT NULL,
    update_time timestamptz NOT NULL DEFAULT now()
);

-- Events whose effect is committed (inserted in the same transaction).
CREATE TABLE dispatch.events_applied (
    event_id   uuid PRIMARY KEY,
    source     text NOT NULL,
    seq        bigint NOT NULL,
    event_type text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Poison events: parked with their error, retried only on request.
CREATE TABLE dispatch.events_parked (
    event_id     uuid PRIMARY KEY,
    source       text NOT NULL,
    seq          bigint NOT NULL,
    event_type   text NOT NULL,
    event        bytea NOT NULL,
    error        text NOT NULL,
    attempts     integer NOT NULL,
    park_time    timestamptz NOT NULL DEFAULT now(),
    resolve_time timestamptz
);
CREATE INDEX events_parked_open_idx ON dispatch.events_parked (park_time) WHERE resolve_time IS NULL;

-- DSP-5 / BIL-2: billing's catalogue is the one price list. Every change of
-- an item raises its revision and is published as catalogue_item.changed in
-- the same transaction; dispatch keeps a read-only copy of the parts.
-- Items set before this migration have never been published: they start at
-- revision 1 with nothing announced, and the service announces them once at
-- start-up (catalogue::announce_pending).
ALTER TABLE billing.catalogue_items
    ADD COLUMN revision bigint NOT NULL DEFAULT 1 CHECK (revision > 0),
    ADD COLUMN announced_revision bigint NOT NULL DEFAULT 0;

CREATE INDEX catalogue_items_unannounced_idx ON billing.catalogue_items (code)
    WHERE announced_revision < revision;

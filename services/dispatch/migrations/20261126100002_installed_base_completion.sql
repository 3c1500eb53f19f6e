-- DSP-1 installed base with its swap history; DSP-5/DSP-6 completion: parts
-- catalogue, parts used, warranty and amount due, cash taken on site and
-- its hand-over to finance; the outbox billing reads.

CREATE TABLE dispatch.devices (
    id                  uuid PRIMARY KEY,
    customer_id         uuid NOT NULL,
    model               text NOT NULL CHECK (model <> ''),
    serial_number       text NOT NULL CHECK (serial_number <> ''),
    sim_number          text CHECK (sim_number <> ''),
    vehicle_plate       text NOT NULL DEFAULT '',
    site_address        text NOT NULL DEFAULT '',
    driver_name         text NOT NULL DEFAULT '',
    purchase_date       date NOT NULL,
    warranty_end        date NOT NULL,
    status              text NOT NULL CHECK (status IN ('active', 'decommissioned')),
    decommission_reason text NOT NULL DEFAULT '',
    registered_by       text NOT NULL,
    registered_at       timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    version             bigint NOT NULL DEFAULT 1,
    CONSTRAINT devices_serial_number_key UNIQUE (serial_number),
    CONSTRAINT devices_located CHECK (vehicle_plate <> '' OR site_address <> ''),
    CONSTRAINT devices_warranty_after_purchase CHECK (warranty_end >= purchase_date)
);
-- A SIM sits in one working device at a time; a retired device frees it.
CREATE UNIQUE INDEX devices_active_sim_key ON dispatch.devices (sim_number)
    WHERE status = 'active' AND sim_number IS NOT NULL;
CREATE INDEX devices_customer_idx ON dispatch.devices (customer_id, id);
CREATE INDEX devices_plate_idx ON dispatch.devices (vehicle_plate, id) WHERE vehicle_plate <> '';

-- DSP-1: every terminal or SIM swap, appended, never updated.
CREATE TABLE dispatch.device_swaps (
    id            bigserial PRIMARY KEY,
    device_id     uuid NOT NULL REFERENCES dispatch.devices (id),
    kind          text NOT NULL CHECK (kind IN ('terminal', 'sim')),
    old_number    text NOT NULL,
    new_number    text NOT NULL CHECK (new_number <> ''),
    swapped_at    timestamptz NOT NULL,
    swapped_by    text NOT NULL,
    reason        text NOT NULL CHECK (reason <> ''),
    work_order_id uuid REFERENCES dispatch.work_orders (id),
    CONSTRAINT device_swaps_changes CHECK (old_number <> new_number)
);
CREATE INDEX device_swaps_device_idx ON dispatch.device_swaps (device_id, id);

-- DSP-5 parts catalogue, priced in integer minor units.
CREATE TABLE dispatch.parts (
    id          uuid PRIMARY KEY,
    code        text NOT NULL CHECK (code <> ''),
    name        text NOT NULL CHECK (name <> ''),
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    CONSTRAINT parts_code_key UNIQUE (code)
);

ALTER TABLE dispatch.work_orders
    ADD COLUMN device_id uuid REFERENCES dispatch.devices (id),
    ADD COLUMN in_warranty boolean,
    ADD COLUMN amount_due_minor bigint CHECK (amount_due_minor >= 0),
    ADD COLUMN collected_minor bigint CHECK (collected_minor >= 0),
    ADD COLUMN currency text,
    ADD CONSTRAINT work_orders_collected_within_due CHECK (collected_minor <= amount_due_minor);

-- DSP-5 parts used, with the catalogue price at completion.
CREATE TABLE dispatch.work_order_parts (
    work_order_id    uuid NOT NULL REFERENCES dispatch.work_orders (id),
    line_no          integer NOT NULL CHECK (line_no > 0),
    part_id          uuid NOT NULL REFERENCES dispatch.parts (id),
    part_code        text NOT NULL,
    name             text NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    currency         text NOT NULL,
    PRIMARY KEY (work_order_id, line_no)
);

-- DSP-6: what finance received from a technician, against what was recorded.
CREATE TABLE dispatch.cash_handovers (
    id             uuid PRIMARY KEY,
    technician_id  uuid NOT NULL REFERENCES dispatch.technicians (id),
    currency       text NOT NULL,
    expected_minor bigint NOT NULL CHECK (expected_minor >= 0),
    counted_minor  bigint NOT NULL CHECK (counted_minor >= 0),
    received_by    text NOT NULL,
    received_at    timestamptz NOT NULL,
    note           text NOT NULL DEFAULT ''
);

-- DSP-6: cash taken on site; handover_id is set once finance has it.
CREATE TABLE dispatch.cash_collections (
    id            uuid PRIMARY KEY,
    work_order_id uuid NOT NULL REFERENCES dispatch.work_orders (id),
    technician_id uuid NOT NULL REFERENCES dispatch.technicians (id),
    amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
    currency      text NOT NULL,
    collected_at  timestamptz NOT NULL,
    handover_id   uuid REFERENCES dispatch.cash_handovers (id),
    CONSTRAINT cash_collections_work_order_key UNIQUE (work_order_id)
);
CREATE INDEX cash_collections_open_idx ON dispatch.cash_collections (technician_id, id) WHERE handover_id IS NULL;

-- Events for other services, written in the transaction of the change they
-- report (X-1); billing invoices `work_order.completed` (X-2). No publisher
-- yet: `seq` orders delivery when one is added.
CREATE TABLE dispatch.outbox (
    seq          bigserial PRIMARY KEY,
    id           uuid NOT NULL UNIQUE,
    event_type   text NOT NULL,
    aggregate_id uuid NOT NULL,
    payload      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);

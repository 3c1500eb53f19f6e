-- DSP-7 meter reading: routes with their schedule, meters on routes, one
-- reading (or recorded miss) per meter and period, anomalies.

CREATE TABLE dispatch.routes (
    id         uuid PRIMARY KEY,
    name       text NOT NULL CHECK (name <> ''),
    schedule   text NOT NULL CHECK (schedule IN ('commercial_monthly', 'residential_monthly',
                   'residential_indoor_quarterly')),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT routes_name_key UNIQUE (name)
);

CREATE TABLE dispatch.meters (
    id             uuid PRIMARY KEY,
    customer_id    uuid NOT NULL,
    -- Copied from the customers service at registration, for the repair
    -- orders anomalies raise.
    customer_name  text NOT NULL,
    service_level  text NOT NULL CHECK (service_level IN ('general', 'key', 'special')),
    number         text NOT NULL CHECK (number <> ''),
    kind           text NOT NULL CHECK (kind IN ('gas', 'water', 'heat')),
    installed_on   date NOT NULL,
    flow_direction text NOT NULL CHECK (flow_direction IN ('forward', 'reverse', 'bidirectional')),
    prepaid        boolean NOT NULL,
    route_id       uuid NOT NULL REFERENCES dispatch.routes (id),
    site_address   text NOT NULL CHECK (site_address <> ''),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL,
    CONSTRAINT meters_number_key UNIQUE (number)
);
CREATE INDEX meters_route_idx ON dispatch.meters (route_id, id);

-- One row per meter and period: a reading or a recorded miss, never an
-- estimate. `id` is the handheld's reading id, so a re-sent stream inserts
-- nothing twice.
CREATE TABLE dispatch.meter_readings (
    id                uuid PRIMARY KEY,
    meter_id          uuid NOT NULL REFERENCES dispatch.meters (id),
    period            text NOT NULL,
    read_at           timestamptz NOT NULL,
    outcome           text NOT NULL CHECK (outcome IN ('read', 'missed')),
    base_reading      bigint,
    cumulative_volume bigint,
    -- Litres since the previous read reading, and the days between them.
    consumption       bigint,
    days              integer,
    balance_minor     bigint,
    currency          text,
    missed_reason     text NOT NULL DEFAULT '',
    anomaly           text CHECK (anomaly IN ('fast', 'slow', 'dead')),
    repair_work_order_id uuid REFERENCES dispatch.work_orders (id),
    recorded_by       text NOT NULL,
    recorded_at       timestamptz NOT NULL,
    CONSTRAINT meter_readings_period_key UNIQUE (meter_id, period),
    CONSTRAINT meter_readings_read_has_volume CHECK ((outcome = 'read') = (cumulative_volume IS NOT NULL)),
    CONSTRAINT meter_readings_missed_has_reason CHECK ((outcome = 'missed') = (missed_reason <> ''))
);
CREATE INDEX meter_readings_latest_idx ON dispatch.meter_readings (meter_id, read_at DESC)
    WHERE outcome = 'read';

-- Dispatch (DSP-2..DSP-4): work orders, their history, technicians and their
-- daily bookings. Vocabularies are stored as text with CHECKs so reports read
-- plainly in SQL.

CREATE TABLE dispatch.technicians (
    id             uuid PRIMARY KEY,
    -- The `sub` of the technician's token.
    user_sub       text NOT NULL,
    display_name   text NOT NULL CHECK (display_name <> ''),
    skills         text[] NOT NULL DEFAULT '{}',
    territory      text NOT NULL CHECK (territory <> ''),
    daily_capacity integer NOT NULL CHECK (daily_capacity BETWEEN 1 AND 50),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL,
    version        bigint NOT NULL DEFAULT 1,
    CONSTRAINT technicians_user_sub_key UNIQUE (user_sub)
);
CREATE INDEX technicians_territory_idx ON dispatch.technicians (territory, id);

-- DSP-3 capacity: one row per technician and day, incremented with a
-- conditional upsert (`booked < capacity`) under the row's lock, so
-- concurrent assignments can never overbook.
CREATE TABLE dispatch.technician_days (
    technician_id uuid NOT NULL REFERENCES dispatch.technicians (id),
    day           date NOT NULL,
    booked        integer NOT NULL CHECK (booked >= 0),
    PRIMARY KEY (technician_id, day)
);

CREATE TABLE dispatch.work_orders (
    id                     uuid PRIMARY KEY,
    customer_id            uuid NOT NULL,
    -- Copied from the customers service at creation (its values then).
    customer_name          text NOT NULL,
    service_level          text NOT NULL CHECK (service_level IN ('general', 'key', 'special')),
    kind                   text NOT NULL CHECK (kind IN ('installation', 'repair', 'maintenance', 'inspection')),
    state                  text NOT NULL CHECK (state IN ('draft', 'pending_approval', 'approved', 'assigned',
                               'en_route', 'on_site', 'completed', 'closed', 'cancelled')),
    urgency                text NOT NULL CHECK (urgency IN ('normal', 'urgent')),
    priority               text NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    site_address           text NOT NULL,
    contact_name           text NOT NULL,
    contact_phone          text NOT NULL,
    description            text NOT NULL,
    required_skills        text[] NOT NULL DEFAULT '{}',
    territory              text NOT NULL,
    -- Installation (DSP-2): the customer's request; vehicles are lines.
    request_reference      text,
    -- Repair (DSP-2): what the caller told us.
    device_model           text,
    purchase_date          date,
    fault                  text,
    device_serial          text,
    technician_id          uuid REFERENCES dispatch.technicians (id),
    scheduled_on           date,
    parts_due_at           timestamptz,
    checklist_confirmed_by text,
    checklist_confirmed_at timestamptz,
    work_done              text NOT NULL DEFAULT '',
    signed_off_by          text NOT NULL DEFAULT '',
    cancel_reason          text NOT NULL DEFAULT '',
    created_by             text NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    version                bigint NOT NULL DEFAULT 1,
    CONSTRAINT work_orders_repair_details CHECK ((kind = 'repair') = (fault IS NOT NULL)),
    CONSTRAINT work_orders_assigned_has_day CHECK ((technician_id IS NULL) = (scheduled_on IS NULL)),
    CONSTRAINT work_orders_cancelled_has_reason CHECK ((state = 'cancelled') = (cancel_reason <> ''))
);
CREATE INDEX work_orders_customer_idx ON dispatch.work_orders (customer_id, id);
CREATE INDEX work_orders_state_idx ON dispatch.work_orders (state, id);
CREATE INDEX work_orders_technician_idx ON dispatch.work_orders (technician_id, id);
-- DSP-4 at-risk list: open urgent repairs by parts due time.
CREATE INDEX work_orders_parts_due_idx ON dispatch.work_orders (parts_due_at, id)
    WHERE parts_due_at IS NOT NULL AND state IN ('approved', 'assigned', 'en_route');

-- DSP-2 installation: one line per vehicle of the request.
CREATE TABLE dispatch.work_order_lines (
    work_order_id uuid NOT NULL REFERENCES dispatch.work_orders (id),
    line_no       integer NOT NULL CHECK (line_no > 0),
    plate         text NOT NULL CHECK (plate <> ''),
    driver_name   text NOT NULL,
    driver_phone  text NOT NULL DEFAULT '',
    device_model  text NOT NULL,
    PRIMARY KEY (work_order_id, line_no),
    CONSTRAINT work_order_lines_plate_key UNIQUE (work_order_id, plate)
);

-- Every step: who, when, from and to which state.
CREATE TABLE dispatch.work_order_history (
    id            bigserial PRIMARY KEY,
    work_order_id uuid NOT NULL REFERENCES dispatch.work_orders (id),
    action        text NOT NULL,
    from_state    text,
    to_state      text NOT NULL,
    actor         text NOT NULL,
    at            timestamptz NOT NULL,
    note          text NOT NULL DEFAULT ''
);
CREATE INDEX work_order_history_order_idx ON dispatch.work_order_history (work_order_id, id);

-- Idempotency keys of mutating RPCs (platform::idempotency).
CREATE TABLE dispatch.idempotency_keys (
    request_id uuid PRIMARY KEY,
    principal  text NOT NULL,
    method     text NOT NULL,
    request    bytea NOT NULL,
    response   bytea,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_idx ON dispatch.idempotency_keys (created_at);

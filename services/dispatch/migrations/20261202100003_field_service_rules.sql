-- Issue 14, DSP-7. Meters carry their class (residential, commercial,
-- industrial), and a route takes only meters of its class: commercial routes
-- commercial and industrial meters, residential routes residential ones.
-- Meters registered before are given the class their route implies.
ALTER TABLE dispatch.meters ADD COLUMN meter_class text
    CHECK (meter_class IN ('residential', 'commercial', 'industrial'));
UPDATE dispatch.meters m SET meter_class = CASE r.schedule WHEN 'commercial_monthly' THEN 'commercial' ELSE 'residential' END
  FROM dispatch.routes r WHERE r.id = m.route_id;
ALTER TABLE dispatch.meters ALTER COLUMN meter_class SET NOT NULL;

-- A reading taken outside its route's planned window (commercial meters are
-- read on the 22nd–23rd) is accepted, flagged and counted in read rates.
ALTER TABLE dispatch.meter_readings ADD COLUMN outside_window boolean NOT NULL DEFAULT false;

-- CUS-13, need to know: a work order keeps its customer's branch, so a
-- branch's dispatchers see their branch's orders. Orders of older releases
-- have none ('') and stay visible to every dispatcher.
ALTER TABLE dispatch.work_orders ADD COLUMN branch text NOT NULL DEFAULT '';

-- DSP-5/DSP-6: labour on site is recorded at completion, and charged out of
-- warranty at the labour rate in force that day, when one is set.
ALTER TABLE dispatch.work_orders ADD COLUMN labour_minutes integer CHECK (labour_minutes >= 0);
ALTER TABLE dispatch.work_orders ADD COLUMN labour_charge_minor bigint CHECK (labour_charge_minor >= 0);
CREATE TABLE dispatch.labour_rates (
    effective_from date PRIMARY KEY,
    hourly_minor   bigint NOT NULL CHECK (hourly_minor >= 0),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    set_by         text NOT NULL,
    set_at         timestamptz NOT NULL DEFAULT now()
);

-- X-2: the invoice billing raised for a completed work order, and whether it
-- is paid, as billing's invoice.payment_changed events report them.
ALTER TABLE dispatch.work_orders ADD COLUMN invoice_id uuid;
ALTER TABLE dispatch.work_orders ADD COLUMN invoice_number text;
ALTER TABLE dispatch.work_orders ADD COLUMN invoice_status text;
ALTER TABLE dispatch.work_orders ADD COLUMN invoice_total_minor bigint;
ALTER TABLE dispatch.work_orders ADD COLUMN invoice_paid_minor bigint;
ALTER TABLE dispatch.work_orders ADD COLUMN invoice_currency text;

-- BIL-3 usage billing: meter readings and the record of what each run billed.

CREATE TABLE billing.meter_readings (
    meter_id               text NOT NULL,
    read_on                date NOT NULL,
    account_id             uuid NOT NULL REFERENCES billing.accounts (id),
    reading_litres         bigint NOT NULL CHECK (reading_litres >= 0),
    kind                   text NOT NULL CHECK (kind IN ('normal', 'replacement', 'rollover')),
    old_meter_final_litres bigint,
    meter_max_litres       bigint,
    recorded_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, read_on),
    CONSTRAINT meter_readings_replacement CHECK (kind <> 'replacement' OR old_meter_final_litres IS NOT NULL),
    CONSTRAINT meter_readings_rollover CHECK (kind <> 'rollover' OR meter_max_litres IS NOT NULL)
);
CREATE INDEX meter_readings_account_idx ON billing.meter_readings (account_id, read_on);

-- One row per account and period billed: re-running a period skips them.
CREATE TABLE billing.usage_billed (
    account_id    uuid NOT NULL REFERENCES billing.accounts (id),
    period_start  date NOT NULL,
    period_end    date NOT NULL,
    invoice_id    uuid NOT NULL REFERENCES billing.invoices (id),
    volume_litres bigint NOT NULL,
    PRIMARY KEY (account_id, period_start, period_end)
);

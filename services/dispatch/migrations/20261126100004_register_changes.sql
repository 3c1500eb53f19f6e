-- DSP-7: a reading below the previous one is accepted only when the meter was
-- replaced or its register rolled over; the reading keeps which it was.
ALTER TABLE dispatch.meter_readings
    ADD COLUMN register_change text CHECK (register_change IN ('meter_replaced', 'rolled_over'));

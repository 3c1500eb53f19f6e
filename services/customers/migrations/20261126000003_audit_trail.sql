-- CUS-13 audit trail: every change to customer data (by trigger, so no code
-- path can forget it) and every read of contact details (by the API), with
-- who, what and when. Personal values are not copied here: a change records
-- which columns changed, not their contents.

CREATE TABLE customers.audit_log (
    id          bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    -- The caller's `sub` (set per transaction by the service; the database
    -- role for changes made outside the service).
    actor       text NOT NULL,
    -- The RPC, e.g. UpdateCustomer, GetCustomer, or 'direct'.
    action      text NOT NULL,
    operation   text NOT NULL CHECK (operation IN ('insert', 'update', 'delete', 'read')),
    table_name  text NOT NULL,
    customer_id uuid,
    row_id      text,
    changed     text[],
    request_id  text
);
CREATE INDEX audit_log_customer_idx ON customers.audit_log (customer_id, id);
CREATE INDEX audit_log_occurred_idx ON customers.audit_log (occurred_at);

CREATE FUNCTION customers.audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rec      jsonb;
    customer uuid;
    cols     text[];
BEGIN
    IF TG_OP = 'DELETE' THEN
        rec := to_jsonb(OLD);
    ELSE
        rec := to_jsonb(NEW);
    END IF;
    IF TG_TABLE_NAME = 'customers' THEN
        customer := (rec ->> 'id')::uuid;
    ELSE
        customer := (rec ->> 'customer_id')::uuid;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(n.key ORDER BY n.key) INTO cols
        FROM jsonb_each(to_jsonb(NEW)) n JOIN jsonb_each(to_jsonb(OLD)) o USING (key)
        WHERE n.value IS DISTINCT FROM o.value;
    END IF;
    INSERT INTO customers.audit_log (actor, action, operation, table_name, customer_id, row_id, changed, request_id)
    VALUES (
        coalesce(nullif(current_setting('crm.actor', true), ''), session_user),
        coalesce(nullif(current_setting('crm.action', true), ''), 'direct'),
        lower(TG_OP), TG_TABLE_NAME, customer, rec ->> 'id', cols,
        nullif(current_setting('crm.request_id', true), ''));
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_customers AFTER INSERT OR UPDATE OR DELETE ON customers.customers
    FOR EACH ROW EXECUTE FUNCTION customers.audit_change();
CREATE TRIGGER audit_contacts AFTER INSERT OR UPDATE OR DELETE ON customers.contacts
    FOR EACH ROW EXECUTE FUNCTION customers.audit_change();
CREATE TRIGGER audit_addresses AFTER INSERT OR UPDATE OR DELETE ON customers.addresses
    FOR EACH ROW EXECUTE FUNCTION customers.audit_change();
CREATE TRIGGER audit_interactions AFTER INSERT OR UPDATE OR DELETE ON customers.interactions
    FOR EACH ROW EXECUTE FUNCTION customers.audit_change();
CREATE TRIGGER audit_follow_ups AFTER INSERT OR UPDATE OR DELETE ON customers.follow_ups
    FOR EACH ROW EXECUTE FUNCTION customers.audit_change();
CREATE TRIGGER audit_visits AFTER INSERT OR UPDATE OR DELETE ON customers.visits
    FOR EACH ROW EXECUTE FUNCTION customers.audit_change();
CREATE TRIGGER audit_surveys AFTER INSERT OR UPDATE OR DELETE ON customers.surveys
    FOR EACH ROW EXECUTE FUNCTION customers.audit_change();
CREATE TRIGGER audit_account_plans AFTER INSERT OR UPDATE OR DELETE ON customers.account_plans
    FOR EACH ROW EXECUTE FUNCTION customers.audit_change();

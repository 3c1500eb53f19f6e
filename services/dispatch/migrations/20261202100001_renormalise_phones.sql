-- Issue 14: the same re-normalisation as the customers service's: a trunk
-- 0 after +86 kept by the parser before libphonenumber is dropped.
UPDATE dispatch.work_orders SET contact_phone = '+86' || substr(contact_phone, 5) WHERE contact_phone LIKE '+860%';
UPDATE dispatch.work_order_lines SET driver_phone = '+86' || substr(driver_phone, 5) WHERE driver_phone LIKE '+860%';

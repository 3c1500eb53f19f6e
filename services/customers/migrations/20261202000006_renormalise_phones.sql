-- Issue 14 (CUS-1): phones are parsed with libphonenumber's metadata now.
-- The parser before it kept a Chinese trunk 0 typed after +86
-- (`+86 0571 8888 6666` was stored as `+8605718888 6666`'s digits,
-- `+86057188886666`); the canonical form drops it (`+8657188886666`), so
-- such numbers would never match the same number typed again. Every other
-- form it stored (`+86` mobiles and landlines, `+` foreign digits) is
-- already what the new parser gives for a valid number.
-- The documents of the customers touched are rebuilt on their next read.
UPDATE customers.customers SET doc_version = NULL
 WHERE phone LIKE '+860%'
    OR id IN (SELECT customer_id FROM customers.contacts k
               WHERE EXISTS (SELECT 1 FROM unnest(k.phones) p WHERE p LIKE '+860%'));
UPDATE customers.customers SET phone = '+86' || substr(phone, 5) WHERE phone LIKE '+860%';
UPDATE customers.contacts k
   SET phones = ARRAY(SELECT q FROM (
                        SELECT CASE WHEN p LIKE '+860%' THEN '+86' || substr(p, 5) ELSE p END AS q, o
                          FROM unnest(k.phones) WITH ORDINALITY AS u(p, o)) t
                      GROUP BY q ORDER BY min(o))
 WHERE EXISTS (SELECT 1 FROM unnest(k.phones) p WHERE p LIKE '+860%');

-- The duplicate check counts shared core grams in customers.core_terms
-- (20261202000002); it no longer looks names up by (region, name_core), so
-- the index every insert paid for goes. name_core stays on the row as the
-- stored distinctive part of the display name.
DROP INDEX customers.customers_region_core_idx;

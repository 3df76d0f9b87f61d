-- Ends the bulk load: builds the keys, unique constraints, indexes and foreign keys that
-- prepare.sql dropped (each in one pass, which also checks the generated rows against
-- them), moves the sequences past the generated ids, and drops the schema bench_load.
-- VACUUM (ANALYZE) runs afterwards, outside any transaction (bench/load.sh).
\set ON_ERROR_STOP on
\o /dev/null

SET maintenance_work_mem = '512MB';
SET client_min_messages = warning;

SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', table_name, name, definition)
FROM bench_load.saved_constraint
WHERE kind IN ('p', 'u')
\gexec
SELECT definition FROM bench_load.saved_index
\gexec
SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', table_name, name, definition)
FROM bench_load.saved_constraint
WHERE kind = 'f'
\gexec

SELECT format('SELECT setval(pg_get_serial_sequence(%L, ''id''), greatest(1, (SELECT max(id) FROM %I)))',
              table_name, table_name)
FROM (VALUES ('events'), ('users'), ('channels'), ('host'), ('task'), ('package'), ('build'),
             ('tag'), ('build_target')) AS t (table_name)
\gexec

DROP SCHEMA bench_load CASCADE;

\o

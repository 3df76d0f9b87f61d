-- Creates pg_stat_statements and one login role per client of the benchmark, so that
-- pg_stat_statements, which keeps its counters per role, tells apart the database time of
-- koji_exporter, of the two full-count exporters, of psql and of the simulated Koji
-- activity. The readers may only read, like a monitoring role on a replica.
\set ON_ERROR_STOP on
\o /dev/null

CREATE EXTENSION pg_stat_statements;

CREATE ROLE bench_koji_exporter LOGIN;
CREATE ROLE bench_sql_exporter LOGIN;
CREATE ROLE bench_postgres_exporter LOGIN;
CREATE ROLE bench_psql LOGIN;
CREATE ROLE bench_churn LOGIN;

GRANT SELECT ON ALL TABLES IN SCHEMA public
    TO bench_koji_exporter, bench_sql_exporter, bench_postgres_exporter, bench_psql, bench_churn;
ALTER ROLE bench_koji_exporter SET default_transaction_read_only = on;
ALTER ROLE bench_sql_exporter SET default_transaction_read_only = on;
ALTER ROLE bench_postgres_exporter SET default_transaction_read_only = on;
ALTER ROLE bench_psql SET default_transaction_read_only = on;

GRANT INSERT, UPDATE ON task, host, build, tag_listing, events TO bench_churn;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO bench_churn;

\o

-- Creates the PostgreSQL role koji_exporter and lets it SELECT exactly the tables that the
-- default rules in queries/*.yaml read. It grants no other table, no write, no role
-- membership and no function.
--
-- Run it as a superuser in Koji's database on the primary, even when the exporter reads a
-- replica: a hot standby rejects CREATE ROLE and GRANT, and roles and grants reach the
-- replicas through replication like any other change.
--
--   psql -X -v ON_ERROR_STOP=1 -d koji -f deploy/sql/koji_exporter_role.sql
--
-- The whole file is one transaction and may be run again at any time, for example after a
-- table is added to the grants below. Each run leaves the role in the state this file
-- describes, and takes back the table grants and role memberships that it does not list.
-- Run it once at a time: of two runs at the same moment, one may fail ("duplicate key" or
-- "tuple concurrently updated") and then changes nothing.
--
-- The role's connection limit is 4 unless psql's variable connection_limit sets another:
--   psql ... -v connection_limit=8 -f deploy/sql/koji_exporter_role.sql
-- The exporter opens database.max_connections sessions (2 by default), and closed sessions
-- may still count for a moment while their replacements open, so allow twice that per
-- exporter that connects as this role.
--
-- The file sets no password, so none is written to a file or a shell history. Set it in
-- psql, which prompts for it twice and sends only a hash of it to the server:
--   \password koji_exporter
-- Then give it to the exporter through database.password_file, PGPASSWORD or ~/.pgpass.

\if :{?connection_limit}
\else
\set connection_limit 4
\endif

BEGIN;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'koji_exporter') THEN
        CREATE ROLE koji_exporter LOGIN;
    END IF;
END
$$;

-- Stated in full so that a run also repairs attributes that someone changed by hand.
ALTER ROLE koji_exporter WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    NOBYPASSRLS CONNECTION LIMIT :connection_limit;

-- Session defaults for every database. The exporter runs each rule in a READ ONLY
-- transaction with the rule's own statement_timeout, so these apply to anything else that
-- logs in as this role, such as psql during troubleshooting. A session may change them:
-- only a hot standby makes writing impossible.
ALTER ROLE koji_exporter SET default_transaction_read_only = on;
ALTER ROLE koji_exporter SET statement_timeout = '60s';
-- An open transaction on a standby with hot_standby_feedback holds back VACUUM on the
-- primary, so one left idle is ended.
ALTER ROLE koji_exporter SET idle_in_transaction_session_timeout = '60s';

-- Memberships such as pg_monitor would grant reads beyond the tables below.
DO $$
DECLARE
    granted_role regrole;
BEGIN
    FOR granted_role IN
        SELECT m.roleid::regrole
        FROM pg_catalog.pg_auth_members m
        WHERE m.member = 'koji_exporter'::regrole
    LOOP
        EXECUTE format('REVOKE %s FROM koji_exporter', granted_role);
    END LOOP;
END
$$;

-- Koji keeps its tables in schema public. Grants from an earlier run or made by hand go
-- first, so the list below is the whole of what the role may read there.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM koji_exporter;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM koji_exporter;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM koji_exporter;

SELECT format('GRANT CONNECT ON DATABASE %I TO koji_exporter', current_database()) \gexec
GRANT USAGE ON SCHEMA public TO koji_exporter;

-- Every table that a rule in queries/*.yaml reads, by file:
--   hosts.yaml         host, host_config
--   channels.yaml      channels, host_channels, host_config, host
--   tasks.yaml         task, channels, and for the tag label build_target,
--                      build_target_config, tag
--   task_waits.yaml    task, channels
--   tags.yaml          tag, tag_config, tag_inheritance, tag_packages,
--                      tag_package_owners, tag_listing, build, package
--   builds.yaml        package, build
--   replica.yaml       no table; pg_is_in_recovery() and pg_last_xact_replay_timestamp(),
--                      which PUBLIC may execute unless a DBA revoked that
--
-- tests/db/default_rules_test.cpp runs every rule connected as this role, with the grants
-- that Koji's schema gives to PUBLIC taken away, so a rule that needs a table missing here
-- fails the tests.
GRANT SELECT ON
    host, host_config, host_channels, channels, task, build_target, build_target_config,
    tag, tag_config, tag_inheritance, tag_packages, tag_package_owners, tag_listing,
    build, package
    TO koji_exporter;

-- What this role can still reach through PUBLIC: Koji's schema grants SELECT to PUBLIC on
-- build, package, task, tag, tag_listing, tag_config, tag_inheritance, tag_packages and
-- rpminfo, and PostgreSQL lets PUBLIC execute most functions and read the system catalogs.
-- Koji's functions that write, such as get_event(), fail for this role because it may not
-- write to any table.

COMMIT;

-- jsm-scim-bridge on PostgreSQL: a login role that owns one database; nothing else.
-- Run through setup.sh (it passes the variables), or by hand as a superuser:
--   psql -v ON_ERROR_STOP=1 -v role=jsm_scim -v db=jsm_scim -v password=SECRET -f setup.sql
-- Idempotent: an existing role gets the new password, an existing database is kept.
-- The schema itself is created by `jsm-scim db upgrade` (as the role), not here.

SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'role', :'password') \gexec

SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'db', :'role', 'UTF8')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec

-- Only the role (and superusers) may connect; in the database only the role may create objects.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'db', :'role') \gexec
\connect :"db"
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SELECT format('GRANT ALL ON SCHEMA public TO %I', :'role') \gexec

-- The monolith's PostgreSQL server (compose service monolith-db), run once by
-- the postgres image at its first start (/docker-entrypoint-initdb.d), as the
-- superuser, in POSTGRES_DB (blog_monolith, which the image creates). The
-- superuser stays with the server: each client gets a role of its own, and
-- the passwords come from the server's environment (psql's \getenv), never
-- from this file. An unset variable stops the script (the server does not
-- start); an empty one leaves the role without a password (it cannot log in).
\set ON_ERROR_STOP on

-- The monolith: owns its database (so its migrations create the tables in
-- public, whose owner is the database's owner), and nothing else.
\getenv monolith_password MONOLITH_DB_PASSWORD
CREATE ROLE monolith LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'monolith_password';
ALTER DATABASE blog_monolith OWNER TO monolith;
-- Only the roles granted CONNECT below reach it (not every role of the server).
REVOKE ALL ON DATABASE blog_monolith FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE blog_monolith TO monolith;

-- >>> stage 2: the data migrations read the monolith's database, and only read it
-- SELECT on every table the monolith creates (the data migrations read
-- comments_comment and posts_post); its sessions are read-only too.
\getenv reader_password MIGRATION_READER_PASSWORD
CREATE ROLE migration_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reader_password';
ALTER ROLE migration_reader SET default_transaction_read_only = on;
GRANT CONNECT ON DATABASE blog_monolith TO migration_reader;
GRANT USAGE ON SCHEMA public TO migration_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO migration_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE monolith IN SCHEMA public GRANT SELECT ON TABLES TO migration_reader;
-- <<< stage 2

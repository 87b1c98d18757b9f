-- Run by the postgres image at its first start (/docker-entrypoint-initdb.d),
-- as the superuser, in POSTGRES_DB (blog_monolith, which the image creates).
-- One server holds every SQL app's database here: each app gets a login role
-- that owns its own database and nothing else, and CONNECT is revoked from
-- PUBLIC on each database, so no role opens another app's. The superuser
-- stays with the server. The passwords come from the server's environment
-- (psql's \getenv: the StatefulSet reads each from its component's Secret),
-- never from this file. An unset variable stops the script (the server does
-- not start); an empty one leaves the role without a password.
\set ON_ERROR_STOP on

-- The monolith: owns blog_monolith (so its migrations create the tables in
-- public, whose owner is the database's owner).
\getenv monolith_password MONOLITH_DB_PASSWORD
CREATE ROLE monolith LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'monolith_password';
ALTER DATABASE blog_monolith OWNER TO monolith;
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

-- >>> stage 4: the posts service has its own database, and its own role
\getenv posts_password POSTS_DB_PASSWORD
CREATE ROLE posts LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'posts_password';
CREATE DATABASE blog_posts OWNER posts;
REVOKE ALL ON DATABASE blog_posts FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE blog_posts TO posts;
-- <<< stage 4

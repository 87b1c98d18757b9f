-- The posts service's PostgreSQL server (compose service posts-db), run once
-- by the postgres image at its first start (/docker-entrypoint-initdb.d), as
-- the superuser, in POSTGRES_DB (blog_posts, which the image creates). As
-- monolith-db.sql: a role of its own for the client, its password from the
-- server's environment (psql's \getenv), never from this file.
\set ON_ERROR_STOP on

-- The posts service: owns its database, and nothing else.
\getenv posts_password POSTS_DB_PASSWORD
CREATE ROLE posts LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'posts_password';
ALTER DATABASE blog_posts OWNER TO posts;
REVOKE ALL ON DATABASE blog_posts FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE blog_posts TO posts;

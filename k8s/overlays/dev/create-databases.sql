-- Run by the postgres image at its first start. POSTGRES_DB creates
-- blog_monolith; the other databases are made here.
-- >>> stage 4: the posts service has its own database
CREATE DATABASE blog_posts;
-- <<< stage 4

-- POSTGRES_DB creates blog_monolith; the posts service has its own database.
CREATE DATABASE blog_posts;

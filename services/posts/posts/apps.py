from django.apps import AppConfig


class PostsConfig(AppConfig):
    name = "posts"
    # The monolith's label too: same table names (posts_post, posts_posttotal),
    # so the stage-4 data migration copies rows table to table.
    label = "posts"
    verbose_name = "Posts (owner of posts and of comment_count)"

from django.apps import AppConfig


class PostsConfig(AppConfig):
    name = "monolith.posts"
    label = "posts"

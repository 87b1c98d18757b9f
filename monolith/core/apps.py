from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "monolith.core"
    label = "core"
    verbose_name = "Cross-cutting plumbing (middleware, errors, pagination)"

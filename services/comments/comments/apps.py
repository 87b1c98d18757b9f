from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CommentsConfig(AppConfig):
    name = "comments"
    label = "comments"
    verbose_name = "Comments (data in MongoDB)"

    def ready(self) -> None:
        if settings.POST_LOOKUP == "async":
            raise ImproperlyConfigured(
                "POST_LOOKUP=async (a replica of posts fed by events) is not built yet; "
                "use POST_LOOKUP=sync."
            )

from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "blogbus.inbox"
    label = "blogbus_inbox"
    verbose_name = "Event inbox"
    default_auto_field = "django.db.models.BigAutoField"

from django.apps import AppConfig


class BusConfig(AppConfig):
    name = "blogbus.bus"
    label = "blogbus_bus"
    verbose_name = "Event bus consumers"

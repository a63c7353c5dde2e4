from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "nanobanana.core"
    label = "core"

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "nanobanana.ops"
    label = "ops"

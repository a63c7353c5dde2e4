from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "nanobanana.catalog"
    label = "catalog"

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "nanobanana.billing"
    label = "billing"

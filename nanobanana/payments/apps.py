from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "nanobanana.payments"
    label = "payments"
    verbose_name = "Payments"

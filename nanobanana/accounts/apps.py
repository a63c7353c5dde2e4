from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "nanobanana.accounts"
    label = "accounts"

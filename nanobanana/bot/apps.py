from django.apps import AppConfig


class BotConfig(AppConfig):
    name = "nanobanana.bot"
    label = "bot"

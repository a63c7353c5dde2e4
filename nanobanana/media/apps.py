from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "nanobanana.media"
    label = "media"

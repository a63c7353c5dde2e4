from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "nanobanana.generation"
    label = "generation"

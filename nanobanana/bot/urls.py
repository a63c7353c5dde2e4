from django.conf import settings
from django.urls import path

from nanobanana.bot import views

urlpatterns = [
    path(settings.TELEGRAM_WEBHOOK_PATH.removeprefix("/api/"), views.telegram_webhook, name="telegram-webhook"),
]

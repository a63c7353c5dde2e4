from django.conf import settings
from django.urls import path

from nanobanana.payments import views

urlpatterns = [
    path(settings.LAVA_WEBHOOK_PATH.removeprefix("/api/"), views.lava_webhook, name="lava-webhook"),
]

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("nanobanana.ops.urls")),
    path("api/", include("nanobanana.bot.urls")),
    path("api/", include("nanobanana.payments.urls")),
    path("media/", include("nanobanana.media.urls")),
]

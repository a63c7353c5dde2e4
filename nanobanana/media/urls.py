from django.urls import path

from nanobanana.media import views

app_name = "media"

urlpatterns = [
    path("<str:token>", views.download, name="download"),
]

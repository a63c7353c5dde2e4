from django.urls import path

from nanobanana.ops import views

urlpatterns = [
    path("health", views.health, name="health"),
]

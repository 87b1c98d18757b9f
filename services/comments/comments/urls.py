from django.urls import path

from . import views

urlpatterns = [
    path("posts/<uuid:post_id>/comments/", views.PostCommentsView.as_view(), name="post-comments"),
]

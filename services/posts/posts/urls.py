from django.urls import path, re_path

from . import views

urlpatterns = [
    path("api/posts/", views.PostListCreateView.as_view(), name="post-list"),
    path("api/posts/<uuid:post_id>/", views.PostDetailView.as_view(), name="post-detail"),
    # Internal: the id is parsed by the view (a malformed one is a JSON 404),
    # and the trailing slash is optional (the contract middleware adds it
    # under /api/ only).
    re_path(
        r"^internal/posts/(?P<post_id>[^/]+)/?$",
        views.InternalPostView.as_view(),
        name="internal-post",
    ),
]

"""Routes for the owner of posts only: not in the public contract or the
OpenAPI document, and not routed by the gateway."""

from django.urls import path

from . import views

urlpatterns = [
    path(
        "comment-counts/",
        views.InternalCommentCountsView.as_view(),
        name="internal-comment-counts",
    ),
    path(
        "posts/<uuid:post_id>/comments/",
        views.InternalPostCommentsView.as_view(),
        name="internal-post-comments",
    ),
]

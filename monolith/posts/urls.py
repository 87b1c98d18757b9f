from django.urls import path

from . import views

urlpatterns = [
    path("posts/", views.PostListCreateView.as_view(), name="post-list"),
    path("posts/<uuid:post_id>/", views.PostDetailView.as_view(), name="post-detail"),
]

# >>> stage 2: the comments service asks whether a post exists
internal_urlpatterns = [
    path("posts/<uuid:post_id>/", views.InternalPostView.as_view(), name="internal-post"),
]
# <<< stage 2

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from blogweb import health
from monolith.posts.urls import internal_urlpatterns  # [stage 2]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/", include("monolith.posts.urls")),
    path("api/", include("monolith.comments.urls")),
    path("internal/", include(internal_urlpatterns)),  # [stage 2]
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

handler400 = "blogweb.middleware.json_400"
handler404 = "blogweb.middleware.json_404"
handler500 = "blogweb.middleware.json_500"

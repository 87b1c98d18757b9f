from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from blogweb import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/", include("comments.urls")),
    # For the owner of posts only: not in the public contract, not routed by the gateway.
    path("internal/", include("comments.internal_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

handler400 = "blogweb.middleware.json_400"
handler404 = "blogweb.middleware.json_404"
handler500 = "blogweb.middleware.json_500"

"""Views that fail on purpose, added to the real URLconf for middleware tests."""

from django.db import OperationalError
from django.urls import path
from rest_framework.views import APIView

from monolith.config.urls import urlpatterns as real_urlpatterns


def plain_view_that_crashes(request):
    raise RuntimeError("boom")


class ApiViewThatCrashes(APIView):
    def get(self, request):
        raise RuntimeError("boom")


class ApiViewWithDatabaseDown(APIView):
    def get(self, request):
        raise OperationalError("connection refused")


urlpatterns = [
    path("api/test/plain-crash/", plain_view_that_crashes),
    path("api/test/api-crash/", ApiViewThatCrashes.as_view()),
    path("api/test/db-down/", ApiViewWithDatabaseDown.as_view()),
    *real_urlpatterns,
]

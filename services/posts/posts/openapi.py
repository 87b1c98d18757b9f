"""One OpenAPI document for the whole public API, as every stage serves it.

At stage 4 the gateway sends /api/schema/ (and the Swagger UI) to the posts
service, but the comment routes are the comments service's: this
drf-spectacular postprocessing hook adds them (blogweb.openapi).
"""

from django.conf import settings

from blogweb.openapi import add_remote_routes


def add_comment_routes(result, generator, request, public):
    return add_remote_routes(
        result, service="comments", url=settings.COMMENTS_URL, timeout=settings.COMMENTS_TIMEOUT_S
    )

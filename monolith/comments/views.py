"""HTTP layer of comments."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from blogweb import idempotency, openapi
from blogweb.pagination import ContractPagination
from monolith.idempotency.store import STORE as IDEMPOTENCY_STORE
from monolith.posts import api as posts_api

from . import api as comments_api  # [stage 2]
from . import selectors, services
from .serializers import CommentInputSerializer, CommentOutputSerializer


class PostCommentsView(APIView):
    pagination_class = ContractPagination

    # >>> stage 2: the routes moved to the comments service
    @staticmethod
    def _moved_away() -> None:
        if not comments_api.served_here():
            # The gateway sends these routes to the comments service; this
            # copy of them is dead code waiting for removal.
            raise NotFound("Comments are served by the comments service at this stage.")
        # <<< stage 2

    @extend_schema(
        operation_id="comments_list",
        parameters=[
            OpenApiParameter("page", int, description="Page number, from 1."),
            OpenApiParameter("page_size", int, description="Items per page (default 20, max 100)."),
        ],
        responses={200: CommentOutputSerializer(many=True), **openapi.LIST_ERRORS},
        tags=["comments"],
    )
    def get(self, request, post_id):
        self._moved_away()  # [stage 2]
        if not posts_api.post_exists(post_id=post_id):
            raise NotFound()
        paginator = ContractPagination()
        page = paginator.paginate_queryset(
            selectors.comment_list(post_id=post_id), request, view=self
        )
        return paginator.get_paginated_response(CommentOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="comments_create",
        request=CommentInputSerializer,
        parameters=openapi.CREATE_PARAMETERS,
        responses={201: CommentOutputSerializer, 404: openapi.NOT_FOUND, **openapi.CREATE_ERRORS},
        tags=["comments"],
    )
    def post(self, request, post_id):
        self._moved_away()  # [stage 2]
        return idempotency.respond(
            request,
            scope=f"comments:{post_id}",
            store=IDEMPOTENCY_STORE,
            create=lambda _: self._create(request, post_id),
        )

    def _create(self, request, post_id) -> Response:
        serializer = CommentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            comment = services.comment_create(post_id=post_id, **serializer.validated_data)
        except services.PostNotFound:
            raise NotFound() from None
        return Response(CommentOutputSerializer(comment).data, status=status.HTTP_201_CREATED)

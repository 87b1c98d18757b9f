"""HTTP layer of comments: the public comment routes of the contract, and
the internal routes the owner of posts calls."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from blogweb import idempotency, openapi
from blogweb.pagination import ContractPagination

from . import post_lookup, selectors, services
from .idempotency import STORE as IDEMPOTENCY_STORE
from .serializers import CommentInputSerializer, CommentOutputSerializer


class PostCommentsView(APIView):
    """The <uuid:post_id> route converter already turned away malformed ids
    (a JSON 404): only uuid.UUID values get this far."""

    pagination_class = ContractPagination

    @extend_schema(
        operation_id="comments_list",
        parameters=[
            OpenApiParameter("page", int, description="Page number, from 1."),
            OpenApiParameter("page_size", int, description="Items per page (default 20, max 100)."),
        ],
        responses={200: CommentOutputSerializer(many=True), **openapi.LIST_ERRORS},
        tags=["comments"],
    )
    def get(self, request, post_id: uuid.UUID):
        if not post_lookup.post_exists(post_id):
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
    def post(self, request, post_id: uuid.UUID):
        return idempotency.respond(
            request,
            scope=f"comments:{post_id}",
            store=IDEMPOTENCY_STORE,
            create=lambda claim: self._create(request, post_id, claim),
        )

    def _create(self, request, post_id: uuid.UUID, claim: idempotency.Claim | None) -> Response:
        serializer = CommentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            comment = services.comment_create(
                post_id=post_id, idempotency=claim, **serializer.validated_data
            )
        except services.PostNotFound:
            raise NotFound() from None
        return Response(CommentOutputSerializer(comment).data, status=status.HTTP_201_CREATED)


@extend_schema(exclude=True)
class InternalCommentCountsView(APIView):
    """POST /internal/comment-counts/ ``{"post_ids": ["<uuid>", ...]}``: the
    counts of a page of posts in one aggregation, for the owner of posts
    (one call per page). A POST because a page of 100 ids in a query string
    passes common request-line limits (gunicorn's is 4094 bytes)."""

    def post(self, request):
        raw_ids = request.data.get("post_ids")
        if not isinstance(raw_ids, list) or not all(isinstance(r, str) for r in raw_ids):
            raise ValidationError({"post_ids": ["A list of UUID strings is required."]})
        if len(raw_ids) > selectors.MAX_COUNT_POST_IDS:
            raise ValidationError(
                {"post_ids": [f"At most {selectors.MAX_COUNT_POST_IDS} ids at a time."]}
            )
        try:
            post_ids = [uuid.UUID(raw) for raw in raw_ids]
        except ValueError:
            raise ValidationError({"post_ids": ["Must be valid UUIDs."]}) from None
        counts = selectors.comment_counts(post_ids=post_ids)
        return Response({"counts": {str(post_id): n for post_id, n in counts.items()}})


@extend_schema(exclude=True)
class InternalPostCommentsView(APIView):
    """DELETE /internal/posts/<uuid>/comments/: the owner of posts deleted the
    post; its comments go too. Idempotent."""

    def delete(self, request, post_id: uuid.UUID):
        # >>> stage 3: events: the call is news of the deletion
        # With POST_LOOKUP=async the replica takes the post's tombstone first,
        # so a new comment is a 404 from this call on, not only once
        # post.deleted arrives.
        # <<< stage 3
        services.comments_delete_of_post(post_id=post_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

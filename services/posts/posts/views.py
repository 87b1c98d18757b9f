"""HTTP layer of posts: parse, call a service or selector, render."""

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from blogweb import idempotency, openapi
from blogweb.pagination import ContractPagination

from . import selectors, services
from .idempotency import STORE as IDEMPOTENCY_STORE
from .serializers import PostInputSerializer, PostOutputSerializer, PostReferenceSerializer

PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="Page number, from 1."),
    OpenApiParameter("page_size", int, description="Items per page (default 20, max 100)."),
]


class PostListCreateView(APIView):
    pagination_class = ContractPagination

    @extend_schema(
        operation_id="posts_list",
        parameters=PAGE_PARAMETERS,
        responses={200: PostOutputSerializer(many=True), **openapi.LIST_ERRORS},
    )
    def get(self, request):
        paginator = ContractPagination()
        page = paginator.paginate_queryset(selectors.post_list(), request, view=self)
        selectors.post_attach_comment_counts(posts=page)
        return paginator.get_paginated_response(PostOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="posts_create",
        request=PostInputSerializer,
        parameters=openapi.CREATE_PARAMETERS,
        responses={201: PostOutputSerializer, **openapi.CREATE_ERRORS},
    )
    def post(self, request):
        return idempotency.respond(
            request, scope="posts", store=IDEMPOTENCY_STORE, create=lambda _: self._create(request)
        )

    def _create(self, request) -> Response:
        serializer = PostInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        post = services.post_create(**serializer.validated_data)
        return Response(PostOutputSerializer(post).data, status=status.HTTP_201_CREATED)


class PostDetailView(APIView):
    @extend_schema(
        operation_id="posts_retrieve",
        responses={200: PostOutputSerializer, 404: openapi.NOT_FOUND},
    )
    def get(self, request, post_id):
        post = selectors.post_get_with_comment_count(post_id=post_id)
        if post is None:
            raise NotFound()
        return Response(PostOutputSerializer(post).data)

    @extend_schema(operation_id="posts_destroy", responses={204: None, 404: openapi.NOT_FOUND})
    def delete(self, request, post_id):
        try:
            services.post_delete(post_id=post_id)
        except services.PostNotFound:
            raise NotFound() from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class InternalPostView(APIView):
    """For the comments service (POST_LOOKUP=sync and the async read-through):
    does this post exist? Cheap: one primary-key read, no comment counts.
    Not routed by the gateway."""

    @extend_schema(exclude=True)
    def get(self, request, post_id):
        try:
            post_id = uuid.UUID(post_id)
        except ValueError:
            raise NotFound() from None
        reference = selectors.post_reference(post_id=post_id)
        if reference is None:
            raise NotFound()
        return Response(PostReferenceSerializer(reference).data)

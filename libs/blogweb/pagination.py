"""Pagination of the contract: ?page=N&page_size=K, default 20, max 100.

DRF's PageNumberPagination has no page_size parameter by default, silently
ignores a bad one, and answers a bad page with 404. The contract wants 400
for anything that is not a positive integer, a cap at 100, and 404 only for a
page past the end.
"""

from collections import OrderedDict

from django.core.paginator import Paginator
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


# More digits than this is more than any table holds: a page past the end, a
# page size over the cap (and no int() of thousands of digits, which Python
# refuses past 4,300).
_DIGITS_MAX = 18


def _positive_int(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or not raw.strip("0"):
        raise ValidationError({name: ["A positive integer is required."]})
    digits = raw.lstrip("0")
    return int(digits) if len(digits) <= _DIGITS_MAX else 10**_DIGITS_MAX


class ContractPagination(PageNumberPagination):
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    django_paginator_class = Paginator

    def get_page_size(self, request):
        requested = _positive_int(request, self.page_size_query_param)
        if requested is None:
            return self.page_size
        return min(requested, self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        page_number = _positive_int(request, self.page_query_param) or 1
        page_size = self.get_page_size(request)
        paginator = self.django_paginator_class(queryset, page_size)
        if page_number > paginator.num_pages:
            raise NotFound("Invalid page.")
        self.page = paginator.page(page_number)
        self.request = request
        return list(self.page)

    def get_paginated_response(self, data):
        return Response(
            OrderedDict(
                [
                    ("count", self.page.paginator.count),
                    ("next", self.get_next_link()),
                    ("previous", self.get_previous_link()),
                    ("results", data),
                ]
            )
        )

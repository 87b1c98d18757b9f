"""blogweb.pagination's parameters: positive integers or a 400, a page size
capped at 100, a page past the end a 404, whatever the number of digits."""

import pytest
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from blogweb.pagination import MAX_PAGE_SIZE, ContractPagination


def paginate(items, **query):
    request = Request(APIRequestFactory().get("/api/things/", query))
    pagination = ContractPagination()
    return pagination, pagination.paginate_queryset(items, request)


@pytest.mark.parametrize("value", ["0", "00", "-1", "1.5", "x", "", " 1", "\u0661", "+1"])
@pytest.mark.parametrize("name", ["page", "page_size"])
def test_anything_but_a_positive_integer_is_a_400(name, value):
    with pytest.raises(ValidationError) as error:
        paginate(list(range(10)), **{name: value})
    assert name in error.value.detail


@pytest.mark.parametrize("digits", [19, 4300, 5000, 100_000])
def test_a_page_of_any_number_of_digits_is_past_the_end(digits):
    with pytest.raises(NotFound):
        paginate(list(range(10)), page="9" * digits)


@pytest.mark.parametrize("digits", [4, 4300, 5000])
def test_a_page_size_of_any_number_of_digits_is_capped(digits):
    pagination, page = paginate(list(range(150)), page_size="9" * digits)
    assert len(page) == MAX_PAGE_SIZE
    assert pagination.page.paginator.per_page == MAX_PAGE_SIZE


def test_leading_zeros_are_the_same_number():
    _, page = paginate(list(range(10)), page="0002", page_size="003")
    assert page == [3, 4, 5]

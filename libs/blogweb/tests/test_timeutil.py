from datetime import UTC, datetime, timedelta, timezone

import pytest

from blogweb.timeutil import format_rfc3339_ms, now_ms, truncate_to_ms


def test_truncate_keeps_whole_milliseconds_only():
    value = datetime(2026, 1, 2, 3, 4, 5, 123999, tzinfo=UTC)
    assert truncate_to_ms(value).microsecond == 123000


def test_now_ms_has_no_sub_millisecond_part():
    assert now_ms().microsecond % 1000 == 0
    assert now_ms().tzinfo is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 7000, tzinfo=UTC), "2026-01-02T03:04:05.007Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC), "2026-01-02T03:04:05.999Z"),
        (
            datetime(2026, 1, 2, 5, 4, 5, 120000, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02T03:04:05.120Z",
        ),
    ],
)
def test_format_is_rfc3339_utc_with_exactly_three_digits(value, expected):
    assert format_rfc3339_ms(value) == expected

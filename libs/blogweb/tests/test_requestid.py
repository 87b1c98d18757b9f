import uuid

import pytest

from blogweb.requestid import accept_or_generate


@pytest.mark.parametrize(
    "incoming", ["abc-123", str(uuid.uuid4()), "req_1.2:3", "a" * 128, "trace/span@x+y=z"]
)
def test_sane_ids_are_echoed(incoming):
    assert accept_or_generate(incoming) == incoming


@pytest.mark.parametrize(
    "incoming", [None, "", "has space", "<script>", "a" * 129, "-leading-dash", "line\nbreak"]
)
def test_insane_ids_are_replaced_by_a_uuid(incoming):
    generated = accept_or_generate(incoming)
    assert generated != incoming
    assert uuid.UUID(generated)

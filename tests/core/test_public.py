"""core.public.public_url: the one way a public page's absolute address (QR code, slip, text message) is made."""
from __future__ import annotations

import pytest

from core.public import public_url


@pytest.mark.parametrize("base, expected", [
    (None, "http://staff.example.org/q/abc-123"),
    ("", "http://staff.example.org/q/abc-123"),
    ("https://pj.example.cn", "https://pj.example.cn/q/abc-123"),
    ("https://pj.example.cn/", "https://pj.example.cn/q/abc-123"),
])
def test_public_url_is_the_public_base_url_and_the_path_when_set_else_the_external_url(make_app, database_url, base,
                                                                                       expected):
    app = make_app(DATABASE_URL=database_url, PUBLIC_BASE_URL=base)
    with app.test_request_context("/", base_url="http://staff.example.org"):
        assert public_url("patient.touchpoint_survey", token="abc-123") == expected


def test_public_url_passes_every_value_to_url_for(make_app, database_url):
    app = make_app(DATABASE_URL=database_url, PUBLIC_BASE_URL="https://pj.example.cn")
    with app.test_request_context("/"):
        assert public_url("complaints.lookup", i=3, n="TJ-1") == "https://pj.example.cn/c/lookup?i=3&n=TJ-1"

"""Review: the thank-you page says the same thing whether the rating is processed yet or still in the inbox."""
from __future__ import annotations

from .test_inbox import _accept


def test_a_low_rating_still_in_the_inbox_gets_the_apology(client, window_code):
    # With a worker (production), the patient reaches the thank-you page before the inbox is processed.
    submission_id, created = _accept(window_code, {"WIN_OVERALL": "2"})
    assert created

    page = client.get(f"/thanks/{submission_id}")

    assert page.status_code == 200
    assert "很抱歉这次没有让您满意" in page.get_data(as_text=True)


def test_a_good_rating_still_in_the_inbox_gets_no_apology(client, window_code):
    submission_id, _created = _accept(window_code, {"WIN_OVERALL": "5"})

    page = client.get(f"/thanks/{submission_id}")

    assert "很抱歉" not in page.get_data(as_text=True)

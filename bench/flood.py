"""Replay the complaint-form flood of issue 10 against a running server, and check that it is stopped.

Usage:  .venv/bin/python bench/flood.py [--url http://127.0.0.1:5000] [--institution 1] [--posts 15]

Start a server first (``make run`` serves the demo on port 5000). The script plays two people on
one network (this machine's address):

1. the flooder opens the complaint form once and posts it ``--posts`` times in the
   医疗质量安全 category, each time with a new device cookie and a new submission id but the
   same form token (what a script does to look like many phones);
2. then an honest second person on the same network opens the form with a cookie of their own
   and sends one complaint.

It prints the status of every post and exits 0 when at most one flood post was registered and
the honest complaint was; 1 otherwise. The tests replay the same flood with Flask's test client
(tests/complaints/test_intake_safeguards.py, test_the_flood_is_stopped_…); this script does it
over HTTP, against a real server and its real rate limits. It sends requests to ``--url`` only,
at most ``--posts`` + 3 of them, and stops by itself.
"""
from __future__ import annotations

import argparse
import html
import re
import secrets
import sys
import urllib.error
import urllib.request
from collections import Counter

DESCRIPTION = "医生开错了药，吃了以后头晕。"


def fetch(url: str, *, cookie: str, body: bytes | None = None, content_type: str = "") -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    request.add_header("Cookie", f"tj_d={cookie}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def hidden_fields(page: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", page):
        if 'type="hidden"' in tag:
            name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
            if name:
                fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return fields


def safety_category(page: str, *, safety: bool = True) -> str:
    """The radio value of the 医疗质量安全 category on the form (``safety=False``: of the first other category)."""
    for option in re.findall(r'<label class="opt">(.*?)</label>', page, re.S):
        if ("医疗质量安全" in option) == safety and (found := re.search(r'name="category"[^>]*value="(\d+)"', option)):
            return found.group(1)
    raise SystemExit(f"the form has no {'' if safety else 'other than the '}医疗质量安全 category")


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = "----flood" + secrets.token_hex(8)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             for name, value in fields.items()]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    return body, f"multipart/form-data; boundary={boundary}"


def complaint(fields: dict[str, str], category: str, submission_id: str) -> dict[str, str]:
    return {**fields, "submission_id": submission_id, "category": category, "relation": "self",
            "description": DESCRIPTION, "complainant_phone": "139-0000-1234"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--institution", type=int, default=1)
    parser.add_argument("--posts", type=int, default=15)
    args = parser.parse_args()
    form_url = f"{args.url.rstrip('/')}/c/{args.institution}/new"

    status, page = fetch(form_url, cookie=secrets.token_hex(16))
    if status != 200:
        raise SystemExit(f"GET {form_url}: {status}")
    fields, category = hidden_fields(page), safety_category(page)
    flood = []
    for _ in range(args.posts):
        body, content_type = multipart(complaint(fields, category, secrets.token_hex(16)))
        status, answer = fetch(form_url, cookie=secrets.token_hex(16), body=body, content_type=content_type)
        flood.append((status, "投诉已提交" in answer))
    registered = sum(ok for _status, ok in flood)
    print(f"flood: {args.posts} posts, one form token, a new device cookie each: "
          f"{dict(Counter(s for s, _ok in flood))} (status: count), {registered} registered")

    honest_cookie = secrets.token_hex(16)
    status, page = fetch(form_url, cookie=honest_cookie)
    body, content_type = multipart(complaint(hidden_fields(page), safety_category(page),
                                             hidden_fields(page)["submission_id"]))
    status, answer = fetch(form_url, cookie=honest_cookie, body=body, content_type=content_type)
    honest = status == 200 and "投诉已提交" in answer
    print(f"honest second person on the same network: {status}, {'registered' if honest else 'REFUSED'}")
    stopped = registered <= 1
    print("result:", "flood stopped, honest complaint taken" if stopped and honest else "FAILED")
    return 0 if stopped and honest else 1


if __name__ == "__main__":
    sys.exit(main())

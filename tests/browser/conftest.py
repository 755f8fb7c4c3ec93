"""Browser fixtures (live_server, browser, phone, desktop, shots) live in tests/conftest.py."""

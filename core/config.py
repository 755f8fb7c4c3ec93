"""Configuration classes. Secrets come only from the environment.

Every setting can be overridden by an environment variable prefixed with
``TINGJIAN_`` (for example ``TINGJIAN_DATABASE_URL``); values are parsed as
JSON where possible, see ``flask.Config.from_prefixed_env``.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

ENV_PREFIX = "TINGJIAN"


class Config:
    SECRET_KEY: str | None = None
    DATABASE_URL: str | None = None
    REDIS_URL: str | None = None
    # Errors (and the log lines the error handler writes) must not list bound values: rows hold
    # patients' names and phone numbers (PIPL).
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "hide_parameters": True}
    BABEL_DEFAULT_LOCALE = "zh_Hans"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ("zh_Hans", "en")
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # A staff session ends this many seconds after sign-in, however busy (the absolute lifetime), and after
    # SESSION_IDLE_TIMEOUT seconds without a request (shared ward PCs); both are checked on the server.
    PERMANENT_SESSION_LIFETIME = 8 * 3600
    SESSION_IDLE_TIMEOUT = 30 * 60
    WTF_CSRF_TIME_LIMIT = 8 * 3600
    MAX_CONTENT_LENGTH = 16 * 1024 * 1024
    HSTS = False
    # Staff login protection (organisation/throttle.py): no account is ever locked. Past LOGIN_FREE_FAILURES failed
    # sign-ins in a row for a username (LOGIN_FREE_FAILURES_PER_ADDRESS for a client address), each try waits
    # LOGIN_FIRST_DELAY seconds, doubled after every further failure, up to LOGIN_MAX_DELAY.
    LOGIN_FREE_FAILURES = 5
    LOGIN_FREE_FAILURES_PER_ADDRESS = 50
    LOGIN_FIRST_DELAY = 5
    LOGIN_MAX_DELAY = 900
    LOGIN_RATE_LIMIT = "20 per minute"
    # Number of reverse proxies in front of the app whose X-Forwarded-* headers
    # are trusted (0: none). Rate limits key on the client address, so set this
    # to 1 behind nginx.
    PROXY_COUNT = 0
    # Patient survey pages. Limits are generous: a hospital's shared Wi-Fi is one address.
    SURVEY_IP_LIMIT = "300 per minute"
    SURVEY_DEVICE_LIMIT = "20 per minute"
    SURVEY_CODE_CACHE_SECONDS = 5
    # A rating waiting longer than this means nothing drains the inbox (no scheduler, no worker, or Redis down;
    # the job runs every 10 s): web processes then process the ratings they accept themselves (survey/inbox.py).
    SURVEY_INBOX_STALL_SECONDS = 60
    # Public complaint pages and the discharge API.
    COMPLAINT_INTAKE_IP_LIMIT = "120 per minute"
    COMPLAINT_INTAKE_DEVICE_LIMIT = "10 per minute;60 per day"
    # Complaints a complainant's form registers per network (/24, /48) and hospital. A large hospital registers
    # a few complaints a day by all channels together; a hospital's Wi-Fi never reaches these honestly, a
    # script rotating device cookies does (README, "Rate limits").
    COMPLAINT_INTAKE_NETWORK_LIMIT = "20 per hour;60 per day"
    # Files kept for forms that came back with a mistake, per network and hospital.
    COMPLAINT_PENDING_NETWORK_LIMIT = "60 per hour"
    COMPLAINT_LOOKUP_IP_LIMIT = "60 per minute"
    API_RATE_LIMIT = "600 per minute"
    # Limits are counted in REDIS_URL (in the process while Redis is away, or without it); see core/ratelimit.py.
    RATELIMIT_ENABLED = True
    RATELIMIT_REDIS_TIMEOUT = 0.5  # seconds; past it a request counts in the process for a few seconds
    # The address printed in QR codes, e.g. "https://survey.example-hospital.cn" (default: the request's host).
    PUBLIC_BASE_URL: str | None = None
    # Outbound notifications: "log", "memory", or a dotted path to a send(message) callable.
    NOTIFIER_BACKEND = "log"
    # Whether texts and e-mails to complainants really leave the app (core.notify.delivers); None: unless
    # NOTIFIER_BACKEND is "log".
    SMS_GATEWAY: bool | None = None
    EMAIL_GATEWAY: bool | None = None
    # The staff site's address, e.g. "https://tingjian.example-hospital.cn", for links in WeCom, DingTalk and
    # e-mail notices sent by workers (default: the request's host, or SERVER_NAME).
    STAFF_BASE_URL: str | None = None
    # Hosts an institution admin may point a group-robot webhook at (a JSON list in the environment): the
    # official WeCom and DingTalk APIs; add a privately deployed WeCom's host. Nothing else, so the setting
    # cannot make the server post to an internal address.
    WEBHOOK_HOSTS = ("qyapi.weixin.qq.com", "oapi.dingtalk.com")
    # Seconds a WeCom / DingTalk webhook or an SMTP server may take before a delivery counts as failed.
    NOTIFY_CHANNEL_TIMEOUT = 10
    # Run jobs inside the request even when Redis is configured (tests, one-off scripts).
    JOBS_INLINE = False
    # Seconds of idleness after which a worker runs the features' watchdogs (core.tasks.register_watchdog).
    WORKER_WATCHDOG_SECONDS = 30
    # Key for signed patient links and QR codes. Printed posters carry these
    # signatures, so this must outlive SECRET_KEY rotations; defaults to SECRET_KEY.
    LINK_SIGNING_KEY: str | None = None
    # Cron strings of periodic jobs are read in this zone; default: the hospitals' (BABEL_DEFAULT_TIMEZONE).
    SCHEDULER_TIMEZONE: str | None = None

    @classmethod
    def finalise(cls, config: dict) -> None:
        """Derive settings that depend on others after env overrides were read."""
        for key in ("SECRET_KEY", "LINK_SIGNING_KEY"):
            if config.get(key) is not None:
                config[key] = str(config[key])  # env values are parsed as JSON: "1234" would be an int
        url = config.get("DATABASE_URL")
        if url and url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        if url and url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url[len("postgres://"):]
        if url:
            config["SQLALCHEMY_DATABASE_URI"] = url
        config["SCHEDULER_TIMEZONE"] = config.get("SCHEDULER_TIMEZONE") or config["BABEL_DEFAULT_TIMEZONE"]


class Development(Config):
    """Embedded mode: SQLite in the instance folder, jobs run inline."""

    DEBUG = False

    @classmethod
    def finalise(cls, config: dict) -> None:
        instance = Path(config["INSTANCE_PATH"])
        instance.mkdir(parents=True, exist_ok=True)
        if not config.get("DATABASE_URL"):
            config["DATABASE_URL"] = f"sqlite:///{instance / 'tingjian.db'}"
        if not config.get("SECRET_KEY"):
            # A per-install key kept in the instance folder, so that sessions
            # survive restarts without a secret in the code.
            key_file = instance / "secret_key"
            if not key_file.exists():
                # Created 0600 from the start: never readable by others, even briefly.
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32))
            config["SECRET_KEY"] = key_file.read_text().strip()
        super().finalise(config)


class Testing(Config):
    TESTING = True
    SURVEY_CODE_CACHE_SECONDS = 0  # tests rotate codes and expect the change at once
    SECRET_KEY = "testing-only-not-a-secret"  # sessions need a key; never used outside tests
    WTF_CSRF_ENABLED = False
    LOGIN_RATE_LIMIT = "1000 per minute"


class Production(Config):
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    HSTS = True

    @classmethod
    def finalise(cls, config: dict) -> None:
        missing = [k for k in ("SECRET_KEY", "DATABASE_URL") if not config.get(k)]
        if missing:
            names = ", ".join(f"{ENV_PREFIX}_{k}" for k in missing)
            raise RuntimeError(f"Production configuration refuses to start: set {names}.")
        super().finalise(config)


CONFIGS: dict[str, type[Config]] = {
    "development": Development,
    "testing": Testing,
    "production": Production,
}


def resolve(config: type[Config] | str | dict | None) -> tuple[type[Config], dict]:
    """Turn create_app's argument into a config class and explicit overrides."""
    overrides: dict = {}
    chosen: type[Config] | str | None
    if isinstance(config, dict):
        overrides = dict(config)
        chosen = overrides.pop("CONFIG", None)
    else:
        chosen = config
    if chosen is None:
        chosen = os.environ.get(f"{ENV_PREFIX}_CONFIG", "development")
    if isinstance(chosen, str):
        try:
            return CONFIGS[chosen.lower()], overrides
        except KeyError:
            raise RuntimeError(f"Unknown configuration {chosen!r}; use one of {sorted(CONFIGS)}") from None
    return chosen, overrides

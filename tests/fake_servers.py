"""Local stand-ins for the outside world the notifier talks to: a group-robot webhook (WeCom, DingTalk) and an
SMTP server. Each runs in a thread on a free loopback port, records what it received and answers as told;
nothing leaves the machine."""
from __future__ import annotations

import base64
import json
import socketserver
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit

OK = {"errcode": 0, "errmsg": "ok"}


@dataclass
class RobotRequest:
    path: str
    query: dict[str, list[str]]
    payload: dict


class _Served:
    """A fake server run on its own thread for a ``with`` block (``self.server``, ``self.thread`` set up by the
    subclass)."""

    server: socketserver.BaseServer
    thread: threading.Thread

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class FakeRobot(_Served):
    """A WeCom / DingTalk robot API: every POST is recorded; answers are taken from ``answers`` (status, body)
    in turn, then {"errcode": 0} with 200."""

    def __init__(self) -> None:
        self.requests: list[RobotRequest] = []
        self.answers: list[tuple[int, dict | str]] = []
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                parts = urlsplit(self.path)
                robot.requests.append(RobotRequest(parts.path, parse_qs(parts.query), json.loads(raw.decode())))
                status, body = robot.answers.pop(0) if robot.answers else (200, OK)
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


    def url(self, path_and_query: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path_and_query}"


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class SmtpState:
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)   # recipients answered 550
    reject_auth: bool = False


class FakeSmtp(_Served):
    """Enough of SMTP for smtplib: EHLO (AUTH PLAIN), AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT. No TLS."""

    def __init__(self) -> None:
        self.state = SmtpState()
        state = self.state

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write((line + "\r\n").encode())

            def handle(self):
                self.reply("220 fake.smtp ESMTP")
                sender, recipients = "", []
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    line = raw.decode().rstrip("\r\n")
                    verb = line.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.wfile.write(b"250-fake.smtp\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
                    elif verb == "HELO":
                        self.reply("250 fake.smtp")
                    elif verb == "AUTH":
                        _, _mech, blob = line.split(" ", 2)
                        _zid, user, password = base64.b64decode(blob).decode().split("\0")
                        if state.reject_auth:
                            self.reply("535 authentication failed")
                        else:
                            state.logins.append((user, password))
                            self.reply("235 ok")
                    elif verb == "MAIL":
                        sender, recipients = line.split(":", 1)[1].strip().strip("<>").split(">")[0], []
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        rcpt = line.split(":", 1)[1].strip().strip("<>")
                        if rcpt in state.refuse:
                            self.reply("550 no such mailbox")
                        else:
                            recipients.append(rcpt)
                            self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        chunks = []
                        while True:
                            chunk = self.rfile.readline()
                            if chunk in (b".\r\n", b""):
                                break
                            chunks.append(chunk)
                        state.mails.append(Mail(sender, recipients, b"".join(chunks)))
                        self.reply("250 queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 ok")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]


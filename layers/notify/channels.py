"""The channels a delivery goes out by: a signed JSON webhook, 企业微信 and 钉钉 group robots
(markdown), and email over SMTP.

Every send either returns (the receiver took it) or raises :class:`SendFailed`, saying whether
trying again can help (``permanent``: a 4xx other than 429, a refused target, a redirect).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import time
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, quote_plus, unquote, urlsplit

import httpx

from layers.db.settings import Settings
from layers.errors import ValidationFailed
from layers.notify import targets
from layers.notify.messages import Message
from layers.notify.outbox import Subscription


class SendFailed(Exception):
    """A send did not reach the receiver; ``permanent`` when retrying cannot help."""

    def __init__(self, error: str, *, permanent: bool = False) -> None:
        super().__init__(error)
        self.error = error[:2000]
        self.permanent = permanent


# The robots' documented limits on a message's content, in UTF-8 bytes (企业微信: text 2048,
# markdown 4096; 钉钉: 20,000).
WECOM_TEXT_BYTES = 2048
WECOM_MARKDOWN_BYTES = 4096
DINGTALK_BYTES = 20000


def fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes on a character boundary, marked with an
    ellipsis when cut (a long description must not make the robot refuse the whole message)."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit - len("…".encode())].decode(errors="ignore") + "…"


def signature(secret: str, body: bytes) -> str:
    """The ``X-Sitewatch-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def dingtalk_signed(url: str, secret: str, timestamp_ms: int) -> str:
    """钉钉's signed URL: ``timestamp`` and ``sign`` (base64 HMAC-SHA256 of
    "timestamp\\nsecret" keyed by the secret, url-encoded) added as query parameters."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    sign = quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp_ms}&sign={sign}"


class Courier:
    """Sends on every channel for one run of the delivery job, with one HTTP client whose
    connections are kept alive between the sends of the run (one client a send opened a new
    connection each time: bench/notify.py measured 42 deliveries/s against 49 plain POSTs/s).

    Used as a context manager: the client is closed when the run ends.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.Client(follow_redirects=False, timeout=settings.delivery_timeout,
                                 trust_env=False)

    def __enter__(self) -> Courier:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def send(self, subscription: Subscription, delivery_id: str, kind: str,
             payload: dict[str, Any], message: Message) -> None:
        """Send one message by the subscription's channel; SendFailed when it did not arrive."""
        sender = {"webhook": self.webhook, "wecom": self.wecom, "dingtalk": self.dingtalk,
                  "email": self.email}[subscription.channel]
        sender(subscription, delivery_id, kind, payload, message)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> bytes:
        """POST ``body`` to a checked URL; the answer, cut at the configured size."""
        settings = self.settings
        try:
            targets.check_url(url, allow_private=settings.webhook_allow_private)
        except ValidationFailed as refused:
            raise SendFailed(refused.message, permanent=True) from None
        try:
            with self.http.stream(
                    "POST", url, content=body,
                    headers={"Content-Type": "application/json; charset=utf-8",
                             "User-Agent": "sitewatch", **headers}) as response:
                answer = b""
                for chunk in response.iter_bytes():
                    answer += chunk
                    if len(answer) > settings.delivery_max_response:
                        answer = answer[:settings.delivery_max_response]
                        break
                status = response.status_code
        except httpx.InvalidURL as failed:
            raise SendFailed(f"invalid URL: {failed}", permanent=True) from None
        except httpx.HTTPError as failed:
            raise SendFailed(f"{type(failed).__name__}: {failed}") from None
        if 300 <= status < 400:
            raise SendFailed(f"HTTP {status}: redirects are not followed", permanent=True)
        if 400 <= status < 500 and status != 429:
            raise SendFailed(f"HTTP {status}: {answer[:200].decode(errors='replace')}",
                             permanent=True)
        if status >= 400:
            raise SendFailed(f"HTTP {status}: {answer[:200].decode(errors='replace')}")
        return answer

    def webhook(self, subscription: Subscription, delivery_id: str, kind: str,
                payload: dict[str, Any], message: Message) -> None:
        """The generic JSON webhook: the event, its payload and the rendered text, signed."""
        body = json.dumps({"id": delivery_id, "event": kind, "data": payload,
                           "title": message.title, "text": message.text,
                           "link": message.link},
                          ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"X-Sitewatch-Event": kind, "X-Sitewatch-Delivery": delivery_id}
        if subscription.secret:
            headers["X-Sitewatch-Signature"] = signature(subscription.secret, body)
        self.post(subscription.target, body, headers)

    def wecom(self, subscription: Subscription, delivery_id: str, kind: str,
              payload: dict[str, Any], message: Message) -> None:
        """企业微信 group robot: ``markdown``; ``text`` when it @mentions people, because
        only the text message takes mobile numbers to mention (``mentioned_mobile_list``),
        and one request keeps a delivery whole (two would half-arrive)."""
        if message.mentions:
            body = {"msgtype": "text",
                    "text": {"content": fit(message.text, WECOM_TEXT_BYTES),
                             "mentioned_mobile_list": list(message.mentions)}}
        else:
            body = {"msgtype": "markdown",
                    "markdown": {"content": fit(message.markdown, WECOM_MARKDOWN_BYTES)}}
        _robot_answer(self.post(subscription.target,
                                json.dumps(body, ensure_ascii=False).encode(), {}))

    def dingtalk(self, subscription: Subscription, delivery_id: str, kind: str,
                 payload: dict[str, Any], message: Message) -> None:
        """钉钉 group robot, ``markdown``, @mentioning by mobile (``at.atMobiles``; the
        numbers must also appear in the text as @number); signed when the subscription has a
        secret."""
        text = message.markdown
        if message.mentions:
            text += "\n\n" + " ".join(f"@{mobile}" for mobile in message.mentions)
        body = {"msgtype": "markdown",
                "markdown": {"title": message.title, "text": fit(text, DINGTALK_BYTES)},
                "at": {"atMobiles": list(message.mentions), "isAtAll": False}}
        url = subscription.target
        if subscription.secret:
            url = dingtalk_signed(url, subscription.secret, int(time.time() * 1000))
        _robot_answer(self.post(url, json.dumps(body, ensure_ascii=False).encode(), {}))

    def email(self, subscription: Subscription, delivery_id: str, kind: str,
              payload: dict[str, Any], message: Message) -> None:
        """An email through ``SITEWATCH_SMTP_URL``: the text, with the message's papers (a
        supervision order's printable page as the HTML alternative, its workbook attached)."""
        settings = self.settings
        if not settings.smtp_url:
            raise SendFailed("SITEWATCH_SMTP_URL is not set")
        server = urlsplit(settings.smtp_url)
        options = parse_qs(server.query)
        sender = options.get("from", [f"sitewatch@{server.hostname or 'localhost'}"])[0]
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = sender
        mail["To"] = ", ".join(targets.check_emails(subscription.target))
        mail["X-Sitewatch-Event"] = kind
        mail["X-Sitewatch-Delivery"] = delivery_id
        mail["Message-ID"] = f"<{delivery_id}@sitewatch>"
        mail.set_content(message.text)
        if message.papers.html is not None:
            mail.add_alternative(message.papers.html, subtype="html")
        for enclosure in message.papers.enclosures:
            maintype, _, subtype = enclosure.content_type.partition("/")
            mail.add_attachment(enclosure.data, maintype=maintype, subtype=subtype,
                                filename=enclosure.filename)
        smtp_class = smtplib.SMTP_SSL if server.scheme == "smtps" else smtplib.SMTP
        default_port = 465 if server.scheme == "smtps" else 25
        try:
            with smtp_class(server.hostname or "localhost", server.port or default_port,
                            timeout=settings.delivery_timeout) as smtp:
                if options.get("starttls", ["0"])[0] == "1":
                    smtp.starttls()
                if server.username:
                    smtp.login(unquote(server.username), unquote(server.password or ""))
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as refused:
            raise SendFailed(f"SMTP refused the recipients: {refused}",
                             permanent=True) from None
        except (smtplib.SMTPException, OSError) as failed:
            raise SendFailed(f"{type(failed).__name__}: {failed}") from None


def _robot_answer(answer: bytes) -> None:
    # Both robots answer HTTP 200 with {"errcode": 0, ...}; anything else is an error
    # (a wrong key or signature, a rate limit), retried like any other failure.
    try:
        errcode = json.loads(answer or b"{}").get("errcode", 0)
    except (ValueError, AttributeError):
        return
    if errcode:
        raise SendFailed(f"robot errcode {errcode}: {answer[:200].decode(errors='replace')}")



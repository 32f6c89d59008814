"""Outbound targets an admin chose: HTTP(S) URLs to public addresses, or email addresses.

A webhook is a request the server makes on an admin's word to wherever the URL points; a URL
naming loopback, link-local or private addresses (the database, cloud metadata at
169.254.169.254, the intranet) is refused unless ``webhook_allow_private`` says such
receivers are expected. Every address the host resolves to is checked, not just the first.
"""

from __future__ import annotations

import ipaddress
import socket
from email.utils import getaddresses
from urllib.parse import urlsplit

from layers.errors import ValidationFailed


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (address.is_private or address.is_loopback or address.is_link_local
                or address.is_multicast or address.is_reserved or address.is_unspecified)


def check_url(url: str, *, allow_private: bool) -> str:
    """Return the URL when it may be posted to; raise ValidationFailed saying why not."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValidationFailed("目标地址无效 the target is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("目标须为 http(s) 地址 the target must be an http(s) URL")
    if parts.username or parts.password:
        raise ValidationFailed("目标地址不得含用户名密码 the URL must not carry credentials")
    if allow_private:
        return url.strip()
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        raise ValidationFailed(f"无法解析主机 cannot resolve host {parts.hostname!r}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not _public(address):
            raise ValidationFailed(
                f"目标指向内网地址 the target resolves to a non-public address ({address}); "
                "set SITEWATCH_WEBHOOK_ALLOW_PRIVATE=1 to allow on-premise receivers")
    return url.strip()


def check_emails(target: str) -> list[str]:
    """The comma-separated addresses of an email target; ValidationFailed when malformed."""
    addresses = [a for _, a in getaddresses([target]) if a]
    if not addresses or any("@" not in a or any(c in a for c in "\r\n ") for a in addresses):
        raise ValidationFailed("收件地址无效 give one or more email addresses, comma-separated")
    return addresses


def check(channel: str, target: str, *, allow_private: bool) -> str:
    """Check a subscription's target for its channel; return it as stored.

    Control characters are refused first, whatever the channel: a line break in an address
    list would smuggle headers (Bcc) into every mail, one in a URL a second request line."""
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in target):
        raise ValidationFailed("目标含控制字符 the target holds a control character")
    if channel == "email":
        check_emails(target)
        return target.strip()
    return check_url(target, allow_private=allow_private)

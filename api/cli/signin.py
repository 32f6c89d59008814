"""Sign-in links for the field pages, shown as a QR code to scan with a phone.

The token travels in the URL *fragment* (``#token=…``): browsers never send a fragment to
the server, so it never reaches access logs or proxies; the page reads it, keeps it as a
typed-in token is kept and removes it from the address bar (maps/static/field/common.js).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from urllib.parse import quote

import segno

from layers.auth.roles import holders
from layers.errors import ValidationFailed

# Error correction M (15 % of the code may be lost) survives a crease or a smudge on a printed
# sheet and still fits a ~60-character link in a small symbol.
_ERROR = "m"


def link(base: str, token: str, *, role: str, unit: str | None) -> str:
    """The field page a token's holder works on, signed in by the token in the fragment.

    >>> link("https://sw.example.cn", "sw_x", role="unit", unit="C01")
    'https://sw.example.cn/units/C01/work#token=sw_x'
    >>> link("http://127.0.0.1:8000", "sw_y", role="inspector", unit=None)
    'http://127.0.0.1:8000/report#token=sw_y'
    """
    if role == "unit" and unit:
        return f"{base}/units/{quote(unit, safe='')}/work#token={token}"
    if role in holders("report"):
        return f"{base}/report#token={token}"
    raise ValidationFailed(f"a {role} token has no field page to sign in to; --link is for"
                           f" the roles {', '.join(holders('report'))} and unit")


def qr(url: str) -> segno.QRCode:
    """The QR code of ``url``."""
    return segno.make_qr(url, error=_ERROR)


def show(code: segno.QRCode) -> None:
    """Draw the code on the terminal (stderr, so stdout keeps the token as its last line)."""
    out = io.StringIO()
    code.terminal(out=out, compact=True)
    sys.stderr.write(out.getvalue())


def save_png(code: segno.QRCode, path: Path) -> None:
    """Write the code as a PNG for printing: 8 pixels a module, the standard 4-module border."""
    if path.suffix.lower() != ".png":
        raise ValidationFailed(f"--qr writes a PNG image: give a file name ending in .png,"
                               f" not {path.name!r}")
    try:
        code.save(str(path), kind="png", scale=8, border=4)
    except OSError as exc:
        raise ValidationFailed(f"cannot write {path}: {exc.strerror}") from None

"""What a notification says: short, Chinese first, with the deadline, the place and a link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

# Each event kind's headline, Chinese then English.
HEADLINES: dict[str, str] = {
    "issue.assigned": "新问题交办 New issue assigned",
    "issue.reassigned": "问题改派 Issue reassigned",
    "issue.reworked": "整改未通过，返工 Rework required",
    "issue.verified": "整改已核查通过 Rectification verified",
    "issue.due_soon": "整改期限将至（黄灯） Deadline near (yellow)",
    "issue.overdue": "问题已超期（红灯） Issue overdue (red)",
    "finding.new": "测评新发现问题 New assessor finding",
    "order.issued": "书面督办单 Supervision order issued",
    "order.escalated": "升级督办 Supervision order escalated",
    "digest": "每日通报 Daily digest",
    "test": "测试消息 Test message",
}
# Events a unit has to act on: its own group's robot @mentions its people for these (not for
# a verification, which asks nothing of it, nor the daily digest, which would ping every day).
MENTIONING = frozenset({"issue.assigned", "issue.reassigned", "issue.reworked", "issue.due_soon",
                        "issue.overdue", "finding.new", "order.issued", "order.escalated"})
# The traffic lights a digest counts, Chinese then English.
LIGHT_NAMES = {"red": "红灯（超期） red (overdue)", "yellow": "黄灯（将到期） yellow (due soon)",
               "green": "绿灯 green", "none": "无期限 no deadline"}


@dataclass(frozen=True)
class Enclosure:
    """A file sent with an email (a supervision order's workbook)."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Papers:
    """What an email carries beyond the text: an HTML body (a supervision order's printable
    page) and attachments (its workbook)."""

    html: str | None = None
    enclosures: tuple[Enclosure, ...] = ()


@dataclass(frozen=True)
class Message:
    """A rendered notification: a title, a markdown body and its plain-text twin; the mobile
    numbers a group robot @mentions, and the papers an email carries."""

    title: str
    markdown: str
    text: str
    link: str | None
    mentions: tuple[str, ...] = ()
    papers: Papers = Papers()


def work_page(unit: str | None, public_url: str) -> str | None:
    """The unit's work page, absolute when the server's public address is configured."""
    if not unit:
        return None
    return f"{public_url.rstrip('/')}/units/{quote(unit, safe='')}/work"


def _when(value: Any, zone: ZoneInfo) -> str | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value)).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _unit_digest_lines(payload: dict[str, Any]) -> list[tuple[str, str]]:
    lights = payload.get("lights") or {}
    counts = "，".join(f"{LIGHT_NAMES[k]} {lights[k]}" for k in LIGHT_NAMES if lights.get(k))
    lines = [("在办问题 Open issues", f"{payload.get('open', 0)}" + (f"（{counts}）"
                                                                  if counts else ""))]
    if payload.get("overdue"):
        lines.append(("超期问题 Overdue", "、".join(str(x) for x in payload["overdue"])))
    orders = "、".join(str(x) for x in payload.get("orders") or [])
    lines.append(("未签收督办单 Orders not signed for",
                  f"{payload.get('orders_unsigned', 0)}" + (f"：{orders}" if orders else "")))
    lines.append(("风险分值 Points at risk", f"{payload.get('points_at_risk', 0):g}"))
    return lines


def _office_digest_lines(payload: dict[str, Any]) -> list[tuple[str, str]]:
    lines = [("未签收督办单 Orders not signed for", f"{payload.get('orders_unsigned', 0)}"),
             ("风险分值 Points at risk", f"{payload.get('points_at_risk', 0):g}")]
    for unit in payload["units"]:
        lights = unit.get("lights") or {}
        lines.append((str(unit.get("unit_name") or unit.get("unit")),
                      f"在办 open {unit.get('open', 0)}，红 red {lights.get('red', 0)}，"
                      f"黄 yellow {lights.get('yellow', 0)}，未签收 unsigned "
                      f"{unit.get('orders_unsigned', 0)}"))
    if not payload["units"]:
        lines.append(("各单位 Units", "无在办问题和未签收督办单 nothing open, no unsigned orders"))
    return lines


def _digest(payload: dict[str, Any], public_url: str) -> Message:
    """The daily digest: a unit's (with its work page) or the office's (one line a unit)."""
    headline = f"{HEADLINES['digest']} {payload.get('date', '')}".strip()
    office = isinstance(payload.get("units"), list)
    lines = _office_digest_lines(payload) if office else _unit_digest_lines(payload)
    link = None if office else work_page(payload.get("unit"), public_url)
    who = "全街道 District" if office else str(payload.get("unit_name") or "")
    title = f"【sitewatch】每日通报 {who} {payload.get('date', '')}".strip()
    markdown = "\n".join([f"### {headline} · {who}", *(f"> **{k}**: {v}" for k, v in lines)]
                         + ([f"\n[打开工作页 Open the work page]({link})"] if link else []))
    text = "\n".join([f"{headline} · {who}", *(f"{k}: {v}" for k, v in lines)]
                     + ([f"打开工作页 Open the work page: {link}"] if link else []))
    return Message(title, markdown, text, link)


def render(kind: str, payload: dict[str, Any], *, public_url: str, zone: ZoneInfo) -> Message:
    """The message for one outbox event."""
    if kind == "digest":
        return _digest(payload, public_url)
    headline = HEADLINES.get(kind, kind)
    lines: list[tuple[str, str]] = []
    if payload.get("order"):
        lines.append(("督办单 Order", f"{payload['order']}（{payload.get('issues', 0)} 个问题 "
                                        f"issues）"))
    if payload.get("issue"):
        what = " ".join(str(x) for x in (payload["issue"], payload.get("category_zh"))
                        if x)
        if payload.get("category_en"):
            what += f" ({payload['category_en']})"
        lines.append(("问题 Issue", what))
    deadline = _when(payload.get("deadline"), zone)
    if deadline:
        lines.append(("整改期限 Deadline", deadline))
    place = " · ".join(str(payload[k]) for k in ("community", "grid", "site") if payload.get(k))
    if place:
        lines.append(("地点 Place", place))
    if payload.get("unit_name"):
        lines.append(("责任单位 Unit", str(payload["unit_name"])))
    if payload.get("description"):
        lines.append(("描述 Description", str(payload["description"])))
    if payload.get("note"):
        lines.append(("说明 Note", str(payload["note"])))
    link = work_page(payload.get("unit"), public_url)
    subject = payload.get("issue") or payload.get("order") or ""
    title = f"【sitewatch】{headline.split(' ')[0]} {subject}".strip()
    markdown = "\n".join([f"### {headline}", *(f"> **{k}**: {v}" for k, v in lines)]
                         + ([f"\n[打开工作页 Open the work page]({link})"] if link else []))
    text = "\n".join([headline, *(f"{k}: {v}" for k, v in lines)]
                     + ([f"打开工作页 Open the work page: {link}"] if link else []))
    return Message(title, markdown, text, link)

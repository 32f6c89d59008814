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
    "finding.new": "测评新发现问题 New assessor finding",
    "order.issued": "书面督办单 Supervision order issued",
    "order.escalated": "升级督办 Supervision order escalated",
    "test": "测试消息 Test message",
}


@dataclass(frozen=True)
class Message:
    """A rendered notification: a title, a markdown body and its plain-text twin."""

    title: str
    markdown: str
    text: str
    link: str | None


def work_page(unit: str | None, public_url: str) -> str | None:
    """The unit's work page, absolute when the server's public address is configured."""
    if not unit:
        return None
    return f"{public_url.rstrip('/')}/units/{quote(unit, safe='')}/work"


def _when(value: Any, zone: ZoneInfo) -> str | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value)).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def render(kind: str, payload: dict[str, Any], *, public_url: str, zone: ZoneInfo) -> Message:
    """The message for one outbox event."""
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

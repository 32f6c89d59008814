"""The field pages, phone first: ``/report`` (an inspector reports a problem) and
``/units/{unit}/work`` (a unit's to-do: rectify with an after photo, sign for orders).

The pages are shells: the HTML carries labels and no data, and the page's script reads and
writes through the same ``/api/v1`` as every client, with the token kept in the browser. So
the server renders them without the database and a cached shell works on a bad connection.
Chinese first; ``lang="en"`` gives English for every label, including the script's messages
(handed to it as JSON, so the script holds no words of its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import quote

import jinja2

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          autoescape=jinja2.select_autoescape(["html"]),
                          undefined=jinja2.StrictUndefined)
Lang = Literal["zh", "en"]

COMMON: dict[str, dict[str, str]] = {
    "zh": {
        "app": "文明城市创建", "other_lang": "English", "token": "令牌", "sign_in": "登录",
        "sign_out": "退出", "token_hint": "请输入管理员发给你的令牌（只需一次，保存在本机）",
        "signed_in": "已登录", "no_token": "请先登录",
        "bad_token": "令牌无效、已过期或已撤销，请重新登录",
        "forbidden": "此令牌无权进行该操作", "offline": "网络不通，请稍后重试",
        "server_error": "服务器暂时不可用，请稍后重试", "loading": "加载中…",
        "photo": "照片", "deadline": "整改时限",
        "offline_now": "离线：所做的上报和整改保存在本机，联网后自动发送",
        "queue_title": "待发送 {n}", "send_now": "立即发送", "discard": "放弃",
        "q_waiting": "等待网络", "q_sending": "正在发送…", "q_refused": "被退回：{why}",
        "fix": "修改", "resizing": "正在压缩照片…", "progress": "正在上传照片 {p}%",
        "age_minutes": "{n} 分钟前", "age_hours": "{n} 小时前", "age_days": "{n} 天前",
        "just_now": "刚刚", "saved_offline": "已保存在本机，联网后自动发送",
    },
    "en": {
        "app": "Civilized City Campaign", "other_lang": "中文", "token": "Token",
        "sign_in": "Sign in", "sign_out": "Sign out",
        "token_hint": "Enter the token the office gave you (once; it is kept on this device)",
        "signed_in": "Signed in", "no_token": "Please sign in first",
        "bad_token": "The token is unknown, expired or revoked; please sign in again",
        "forbidden": "This token may not do that", "offline": "No connection; try again later",
        "server_error": "The server is unavailable; try again later", "loading": "Loading…",
        "photo": "Photo", "deadline": "Deadline",
        "offline_now": "Offline: reports and rectifications are kept on this phone and sent "
                       "when the connection returns",
        "queue_title": "{n} waiting to send", "send_now": "Send now", "discard": "Discard",
        "q_waiting": "waiting for the network", "q_sending": "Sending…",
        "q_refused": "Refused: {why}", "fix": "Fix", "resizing": "Shrinking the photo…",
        "progress": "Uploading the photo {p}%", "age_minutes": "{n} min ago",
        "age_hours": "{n} h ago", "age_days": "{n} days ago", "just_now": "just now",
        "saved_offline": "Kept on this phone; it will be sent when the connection returns",
    },
}

REPORT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "问题上报", "position": "位置", "locating": "正在定位…",
        "located": "已定位（精度约 {m} 米）", "drag_hint": "位置不准时可拖动图钉校正",
        "moved": "已手动校正位置", "no_position": "无法获取定位，请拖动图钉到问题位置",
        "near_site": "附近点位：{name}（{layer}，{m} 米）",
        "in_site": "位于点位：{name}（{layer}）",
        "no_site": "附近没有监测点位", "category": "问题类别", "choose": "请选择问题类别",
        "relevant": "本点位常见问题", "other_layers": "其他问题",
        # The campaign's five rectification actions (五大整治行动), the picker's groups.
        "act_market": "农贸市场及周边", "act_construction": "建筑工地",
        "act_appearance": "市容环境", "act_compound": "社区环境", "act_behaviour": "市民文明行为",
        "note": "问题描述", "note_hint": "例如：市场北门外占道经营，三个摊位",
        "photo_hint": "拍照或选择照片", "submit": "提交", "sending": "正在提交…",
        "uploading": "正在上传照片…", "retry": "重新发送",
        "pending": "有一份未确认送达的上报，可重新发送（不会重复）",
        "send_failed": "发送未确认：{why}。可重新发送，不会重复上报",
        "invalid": "请检查：{why}", "need_category": "请选择问题类别",
        "need_note": "请填写问题描述", "need_position": "尚未获得位置",
        "assigned": "已上报并交办", "replayed": "（重复提交已合并为同一问题）",
        "issue_id": "问题编号", "community": "属地社区", "ground": "所在网格",
        "lead_unit": "牵头单位", "site": "点位", "none": "无", "unassigned": "待人工交办",
        "new_report": "再报一个", "nearby_dupes": "附近已有 {n} 个同类未结问题，请留意是否重复",
        "use_photo_position": "使用照片中的拍摄位置",
        "photo_position": "已使用照片中的拍摄位置（{lat}, {lon}）",
        "rough_fix": "定位精度约 {m} 米，超出允许的 {tol} 米：请稍候或拖动图钉校正",
        "offline_categories": "离线：未能按附近点位排序问题类别",
        "sent_item": "已送达 {id}：{unit}",
        "pin": "问题位置图钉", "pin_here": "把图钉移到地图中央",
    },
    "en": {
        "title": "Report a problem", "position": "Position", "locating": "Locating…",
        "located": "Located (about {m} m accuracy)",
        "drag_hint": "Drag the pin if the position is off", "moved": "Position corrected by hand",
        "no_position": "No position from the phone; drag the pin to the problem",
        "near_site": "Nearby site: {name} ({layer}, {m} m)", "in_site": "At site: {name} ({layer})",
        "no_site": "No monitored site nearby", "category": "Category",
        "choose": "Choose a category", "relevant": "Common at this site",
        "other_layers": "Other problems",
        "act_market": "Markets and surroundings", "act_construction": "Construction sites",
        "act_appearance": "City appearance", "act_compound": "Residential compounds",
        "act_behaviour": "Civilised behaviour",
        "note": "Description", "note_hint": "e.g. three stalls on the road outside the market's "
                                            "north gate",
        "photo_hint": "Take or choose a photo", "submit": "Submit", "sending": "Submitting…",
        "uploading": "Uploading the photo…", "retry": "Send again",
        "pending": "A report was not confirmed; send it again (it will not be duplicated)",
        "send_failed": "Not confirmed: {why}. Send again; it will not be duplicated",
        "invalid": "Please check: {why}", "need_category": "Choose a category",
        "need_note": "Write a description", "need_position": "No position yet",
        "assigned": "Reported and assigned", "replayed": " (the retry was merged into one issue)",
        "issue_id": "Issue", "community": "Community", "ground": "Grid",
        "lead_unit": "Lead unit", "site": "Site", "none": "none",
        "unassigned": "waiting for manual assignment", "new_report": "Report another",
        "nearby_dupes": "{n} open issue(s) of this category nearby: is it a duplicate?",
        "use_photo_position": "Use where the photo was taken",
        "photo_position": "Placed where the photo was taken ({lat}, {lon})",
        "rough_fix": "The fix is about {m} m, worse than the {tol} m allowed: wait, or drag "
                     "the pin",
        "offline_categories": "Offline: categories are not ordered for the nearest site",
        "sent_item": "Sent {id}: {unit}",
        "pin": "Pin at the problem", "pin_here": "Move the pin to the map's centre",
    },
}

WORK: dict[str, dict[str, str]] = {
    "zh": {
        "title": "整改任务", "unit": "责任单位", "unit_map": "单位地图", "issues": "待整改问题",
        "none_open": "没有待整改的问题", "reported": "发现时间", "map": "地图",
        "green": "正常", "yellow": "临期", "red": "超期", "after_photo": "整改后照片",
        "rectify": "提交整改", "rectifying": "正在提交整改…", "need_photo": "请先拍整改后照片",
        "rectified": "已提交整改，等待核查", "stale": "该问题已被他人更新，已重新加载，请再次提交",
        "orders": "督办单", "no_orders": "没有督办单", "order": "督办单",
        "escalation": "升级督办单",
        "issued": "签发", "open_count": "未整改 {n} / 共 {total}", "overdue_count": "超期 {n}",
        "acknowledge": "签收", "acknowledged": "已签收 {at}", "print": "查看/打印",
        "no_photo": "无照片", "list_age": "离线：显示的是{age}获取的列表",
        "rectify_saved": "整改已保存在本机，联网后自动发送", "rectify_item": "整改 {id}",
    },
    "en": {
        "title": "Work list", "unit": "Unit", "unit_map": "Unit map", "issues": "Issues to rectify",
        "none_open": "Nothing to rectify", "reported": "Reported", "map": "Map",
        "green": "on time", "yellow": "due soon", "red": "overdue", "after_photo": "After photo",
        "rectify": "Rectified", "rectifying": "Sending…",
        "need_photo": "Take the after photo first",
        "rectified": "Rectification sent; waiting for verification",
        "stale": "Someone changed this issue; reloaded, please send again",
        "orders": "Supervision orders", "no_orders": "No supervision orders",
        "order": "Supervision order", "escalation": "Escalated order", "issued": "Issued",
        "open_count": "{n} open of {total}", "overdue_count": "{n} overdue",
        "acknowledge": "Sign for it", "acknowledged": "Signed for {at}", "print": "View / print",
        "no_photo": "no photo", "list_age": "Offline: this list was fetched {age}",
        "rectify_saved": "Rectification kept on this phone; sent when the connection returns",
        "rectify_item": "Rectify {id}",
    },
}


def labels(page: dict[str, dict[str, str]], lang: Lang) -> dict[str, str]:
    """The page's labels with the common ones, in ``lang``."""
    return {**COMMON[lang], **page[lang]}


def report_html(timezone: str, lang: Lang, tolerance_m: float) -> str:
    """The report page shell; its scripts show times in ``timezone`` (the district's) and warn
    when the phone's fix is worse than ``tolerance_m`` (the assignment's tolerance)."""
    return _env.get_template("field_report.html").render(
        lang=lang, t=labels(REPORT, lang), other_lang="zh" if lang == "en" else "en",
        timezone=timezone, tolerance_m=tolerance_m,
        manifest=f"/report.webmanifest?lang={lang}")


def work_html(unit: str, timezone: str, lang: Lang = "zh") -> str:
    """The unit work page shell; ``unit`` is only echoed (escaped), the script loads data and
    shows times in ``timezone`` (the district's)."""
    return _env.get_template("field_work.html").render(
        lang=lang, t=labels(WORK, lang), unit=unit, other_lang="zh" if lang == "en" else "en",
        timezone=timezone,
        manifest=f"/units/{quote(unit, safe='')}/work.webmanifest?lang={lang}")


# Icons of the installed app (drawn by maps/icons.py; the maskable one keeps
# its drawing inside the central safe circle that launchers crop to).
_ICONS = [{"src": "/static/field/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
          {"src": "/static/field/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
          {"src": "/static/field/icons/maskable-512.png", "sizes": "512x512",
           "type": "image/png", "purpose": "maskable"}]


def manifest(lang: Lang = "zh", unit: str | None = None) -> dict[str, object]:
    """The web app manifest of the report page, or of ``unit``'s work page: each installs as
    its own app, opening at its page in ``lang``."""
    t = labels(WORK if unit else REPORT, lang)
    page = f"/units/{quote(unit, safe='')}/work" if unit else "/report"
    name = f"{t['title']} {unit}" if unit else t["title"]
    return {
        "id": page, "name": f"{name} · {t['app']}", "short_name": name,
        "lang": "en" if lang == "en" else "zh-CN", "start_url": f"{page}?lang={lang}",
        "scope": "/", "display": "standalone", "orientation": "portrait",
        "background_color": "#f2f3f5", "theme_color": "#b3121d", "icons": _ICONS,
    }

"""The worker's full job list: the map analysis refresh runs in the worker, not the web; the
deliveries' emails carry a supervision order's papers."""

from __future__ import annotations

import io

import openpyxl
import psycopg

from api.services import order_papers
from api.services.worker_jobs import all_jobs
from layers.auth.tokens import Principal
from layers.db.settings import Settings
from layers.issues import lifecycle
from layers.issues.lifecycle import Transition
from layers.notify import outbox
from layers.supervision import orders
from layers.worker import runner
from tests.loopback import smtp_inbox


def test_the_refresh_job_prepares_the_landing_snapshots(demo_dsn: str) -> None:
    settings = Settings(database_url=demo_dsn, snapshot_interval=30)
    refresh = [j for j in all_jobs(settings) if j.name == "refresh-maps"]
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        ran = runner.run_due(conn, refresh, settings, "w")
        stored = conn.execute("SELECT count(*) FROM analysis_snapshot").fetchone()
    assert ran and ran[0][2] == f"{stored[0] if stored else 0} snapshot(s) refreshed"
    assert stored is not None and stored[0] >= 4


def test_the_refresh_job_is_off_at_interval_zero() -> None:
    refresh = [j for j in all_jobs(Settings(snapshot_interval=0)) if j.name == "refresh-maps"]
    assert refresh and not refresh[0].enabled(Settings(snapshot_interval=0))



def test_an_order_email_carries_its_printable_page_and_workbook(dsn: str) -> None:
    """The worker's deliver job (as the full job list binds it) emails a supervision order
    with its page as the HTML body and its workbook attached."""
    with smtp_inbox() as (inbox, smtp_url), psycopg.connect(dsn, autocommit=True) as conn:
        settings = Settings(database_url=dsn, smtp_url=smtp_url)
        conn.execute("INSERT INTO unit (code, name, kind) VALUES ('C01', '湖东社区',"
                     " 'territorial')")
        outbox.add(conn, unit="C01", channel="email", target="hd@example.cn", secret=None,
                   events=["order.issued", "issue.assigned"], created_by="创建办")
        row = conn.execute(
            "INSERT INTO issue (category_code, geom, description, source, status, deadline,"
            " reported_at) VALUES ('CTY-05', ST_SetSRID(ST_MakePoint(120.7, 31.3), 4326),"
            " '暴露垃圾', 'self_inspection', 'reported', now() - interval '1 day',"
            " now() - interval '3 days') RETURNING public_id").fetchone()
        assert row is not None
        public_id = str(row[0])
        lifecycle.apply(conn, public_id, Transition("assign", 1, unit="C01"),
                        Principal(0, "创建办 李四", "admin", None))
        (code,), = [(o.code,) for o in orders.issue_orders(
            conn, orders.Issuer("督查组 张三", "supervisor"))]
        deliver = [j for j in all_jobs(settings) if j.name == "deliver"]
        ran = runner.run_due(conn, deliver, settings, "w")
    assert ran and ran[0][2] == "2 delivered, 0 to retry, 0 dead"
    by_event = {mail["X-Sitewatch-Event"]: mail for _, mail in inbox.mails}
    # The assignment's email is its text alone.
    assert not by_event["issue.assigned"].is_multipart()
    mail = by_event["order.issued"]
    parts = {part.get_content_type(): part for part in mail.walk()}
    text, html = parts["text/plain"].get_payload(decode=True), parts["text/html"]
    assert isinstance(text, bytes) and code in text.decode()
    page = html.get_payload(decode=True)
    assert isinstance(page, bytes) and code in page.decode() and "督办" in page.decode()
    sheet = parts[order_papers.XLSX]
    assert sheet.get_filename() == f"{code}.xlsx"
    data = sheet.get_payload(decode=True)
    assert isinstance(data, bytes)
    sheet_read = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    cells = [str(c) for r in sheet_read.iter_rows(values_only=True) for c in r if c is not None]
    assert public_id in cells

"""Seed the functional departments and the problem catalog shipped as package data.

The catalog names its default functional department by Chinese name (城管, 建设, ...); those
departments exist in every sub-district, so they are seeded here with stable codes.
"""

import csv
import io
from importlib import resources

from yoyo import step

__depends__ = {"0001_schema"}

FUNCTIONAL_UNITS = [
    ("CG", "城管", "Urban management"),
    ("JS", "建设", "Construction"),
    ("SCJG", "市场监管", "Market regulation"),
    ("PCS", "派出所", "Police station"),
]


def apply(conn):  # type: ignore[no-untyped-def]  # yoyo passes a raw DB-API connection
    cur = conn.cursor()
    for code, name, name_en in FUNCTIONAL_UNITS:
        cur.execute(
            "INSERT INTO unit (code, name, name_en, kind) VALUES (%s, %s, %s, 'functional') "
            "ON CONFLICT (code) DO NOTHING",
            (code, name, name_en),
        )
    text = resources.files("layers").joinpath("data/categories.csv").read_text("utf-8")
    for row in csv.DictReader(io.StringIO(text)):
        cur.execute(
            "INSERT INTO category (code, name_zh, name_en, site_layer, functional_unit_id,"
            " deadline_hours, points, dcm_event_class)"
            " VALUES (%s, %s, %s, %s, (SELECT id FROM unit WHERE name = %s), %s, %s, %s)"
            " ON CONFLICT (code) DO NOTHING",
            (
                row["code"], row["name_zh"], row["name_en"], row["site_layer"] or None,
                row["functional_unit"] or None, int(row["deadline_hours"]),
                row["points"], row["dcm_event_class"] or None,
            ),
        )


def rollback(conn):  # type: ignore[no-untyped-def]  # yoyo passes a raw DB-API connection
    cur = conn.cursor()
    cur.execute("DELETE FROM category")
    cur.execute("DELETE FROM unit WHERE code IN ('CG', 'JS', 'SCJG', 'PCS')")


steps = [step(apply, rollback)]

"""``sitewatch demo --streets N``: a district of adjacent streets loads, each street with its
ground, units and issues, the functional departments shared, issues on the borders."""

from __future__ import annotations

import psycopg
from typer.testing import CliRunner

from api.cli.main import app

PER_STREET = 400


def test_the_cli_loads_a_district_of_three_streets(dsn: str) -> None:
    result = CliRunner().invoke(app, ["demo", "--streets", "3", "--issues", str(PER_STREET)],
                                env={"DATABASE_URL": dsn})
    assert result.exit_code == 0, result.output
    assert "streets 3" in result.stdout
    with psycopg.connect(dsn) as conn:
        streets = conn.execute(
            "SELECT j.code, u.code FROM jurisdiction j JOIN unit u ON u.id = j.unit_id"
            " WHERE j.level = 'street' ORDER BY j.code").fetchall()
        per_street = conn.execute("""
            SELECT st.code, count(DISTINCT c.id), count(DISTINCT i.id)
            FROM jurisdiction st
            JOIN jurisdiction c ON c.parent_id = st.id
            JOIN jurisdiction g ON g.parent_id = c.id
            LEFT JOIN issue i ON i.jurisdiction_id = g.id
            WHERE st.level = 'street' GROUP BY st.code ORDER BY st.code""").fetchall()
        issues = conn.execute("""
            SELECT count(*), count(*) FILTER (WHERE jurisdiction_id IS NULL OR outside_all),
                   count(*) FILTER (WHERE on_street_border)
            FROM issue""").fetchone()
        functional = conn.execute(
            "SELECT count(*) FROM unit WHERE kind = 'functional'").fetchone()
        led_across = conn.execute("""
            SELECT count(DISTINCT st.id) FROM issue i
            JOIN unit u ON u.id = i.lead_unit_id AND u.code = 'CG'
            JOIN jurisdiction g ON g.id = i.jurisdiction_id
            JOIN jurisdiction c ON c.id = g.parent_id
            JOIN jurisdiction st ON st.id = c.parent_id""").fetchone()
    assert streets == [("320571001", "JD01"), ("320571002", "JD02"), ("320571003", "JD03")]
    assert [code for code, _, _ in per_street] == [s for s, _ in streets]
    assert all(communities >= 3 and n >= PER_STREET * 0.9 for _, communities, n in per_street)
    assert issues is not None
    total, unassigned, on_border = issues
    assert (total, unassigned) == (3 * PER_STREET, 0)
    assert on_border == 3 * PER_STREET // 100  # the demo's border issues, and only those
    assert functional == (4,)
    assert led_across == (3,)  # one 城管 whose line crosses every street

"""One session-and-error helper for every command: the same lines, the same exit code."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from api.cli.main import app
from api.cli.session import reported_errors
from layers.analysis.budget import refuse
from layers.db.cluster import ClusterError
from layers.errors import NotFound, ValidationFailed
from layers.io.gisfile import row_error

runner = CliRunner()
UNREACHABLE = {"DATABASE_URL": "host=/nonexistent port=1 dbname=x user=x", "COLUMNS": "40"}


@pytest.mark.parametrize("args", [
    ["db", "migrate"], ["token", "list"], ["calendar", "list", "2026"], ["check"],
    ["export", "market"], ["inspect", "list"], ["orders", "list"], ["phases", "list"],
    ["scores"], ["hotspots", "--out", "x.geojson"], ["map", "--out", "x.html"],
])
def test_every_command_says_the_database_is_unreachable_in_one_line(args: list[str]) -> None:
    result = runner.invoke(app, args, env=UNREACHABLE)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the database (")
    assert lines[0].endswith("is it running? try `sitewatch db start`")


def _printed(exc: Exception, capsys: pytest.CaptureFixture[str]) -> list[str]:
    with pytest.raises(typer.Exit) as exited, reported_errors():
        raise exc
    assert exited.value.exit_code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.splitlines()


def test_an_import_prints_each_bad_row_and_the_file_level_finding(
        capsys: pytest.CaptureFixture[str]) -> None:
    exc = ValidationFailed("sites.csv: some rows cannot be read", details=[
        row_error(3, "layer", "unknown site layer 'zoo'"), row_error(None, "crs", "no CRS")])
    assert _printed(exc, capsys) == ["error: sites.csv: some rows cannot be read",
                                     "  row 3, layer: unknown site layer 'zoo'",
                                     "  file, crs: no CRS"]


def test_a_refused_plan_or_analysis_names_the_option_to_change(
        capsys: pytest.CaptureFixture[str]) -> None:
    plan = ValidationFailed("the round cannot be planned as asked",
                            details=[{"field": "size", "message": "size must be at least 5"}])
    assert _printed(plan, capsys)[1:] == ["  size: size must be at least 5"]
    analysis = refuse(("resolution",), "too many cells")
    assert _printed(analysis, capsys)[1:] == ["  resolution: too many cells"]


def test_messages_are_printed_as_written_not_as_console_markup(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert _printed(NotFound("no unit '[bold]x[/bold]'"), capsys) == [
        "error: no unit '[bold]x[/bold]'"]
    assert _printed(ClusterError("initdb failed [exit 1]"), capsys) == [
        "error: initdb failed [exit 1]"]

"""The ``sitewatch`` command line: cluster, migrations, demo data, tokens and the server."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from api.cli.hotspots import hotspots_command
from api.cli.inspect import inspect_app
from api.cli.io import export, import_app
from api.cli.maps import map_command
from api.cli.notify import notify_app
from api.cli.orders import orders_app
from api.cli.replica import replica_app
from api.cli.reports import reports_app
from api.cli.retention import retention_app
from api.cli.revisions import revisions_app
from api.cli.session import actor, err, reported_errors, session
from api.cli.tls import tls_app
from api.cli.worker import start_child, stop_child, worker_command
from layers.auth import tokens
from layers.db import database, migrate
from layers.db.settings import Settings
from layers.errors import DomainError
from layers.issues import evidence

app = typer.Typer(help="sitewatch — 文明城市创建 site monitoring.", no_args_is_help=True)
db_app = typer.Typer(help="The database: managed local cluster and migrations.",
                     no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence photos.", no_args_is_help=True)
calendar_app = typer.Typer(help="Holidays and make-up working days (working-day deadlines).",
                           no_args_is_help=True)
app.add_typer(db_app, name="db")
db_app.add_typer(replica_app, name="replica")
app.add_typer(token_app, name="token")
app.add_typer(evidence_app, name="evidence")
app.add_typer(calendar_app, name="calendar")
app.add_typer(import_app, name="import")
app.add_typer(inspect_app, name="inspect")
app.add_typer(orders_app, name="orders")
app.add_typer(notify_app, name="notify")
app.add_typer(tls_app, name="tls")
app.add_typer(revisions_app, name="revisions")
app.add_typer(retention_app, name="retention")
app.add_typer(reports_app)  # scores, phases
app.command("export")(export)
app.command("hotspots")(hotspots_command)
app.command("map")(map_command)
app.command("worker")(worker_command)
# `serve --announce` (make run) prints a fresh admin token on every start.
ANNOUNCED_TOKEN_LIFETIME = timedelta(hours=24)
ANNOUNCED_ADMIN_NAME = "管理员 / administrator (make run)"


@db_app.command("start")
def db_start() -> None:
    """Create (first time) and start the managed PostGIS cluster under .sitewatch/pgdata."""
    settings = Settings()
    if not settings.managed:
        err.print("DATABASE_URL is set: using that server, no local cluster started.")
        return
    cluster = database.managed_cluster(settings)
    with reported_errors():
        cluster.start()
    print(f"PostGIS running: {cluster.conninfo()}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the managed cluster (data is kept)."""
    settings = Settings()
    if not settings.managed:
        err.print("DATABASE_URL is set: there is no local cluster to stop.")
        return
    with reported_errors():
        database.managed_cluster(settings).stop()
    print("PostGIS stopped.")


@db_app.command("status")
def db_status() -> None:
    """Say whether the managed cluster is running; exit 0 if it is, 3 if not."""
    settings = Settings()
    if not settings.managed:
        print("external database (DATABASE_URL)")
        return
    cluster = database.managed_cluster(settings)
    with reported_errors():
        state = cluster.status()
    print(f"{state}: {cluster.pgdata}")
    if state != "running":
        raise typer.Exit(3)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations."""
    with reported_errors():
        applied = migrate.apply(database.conninfo(Settings()))
    print(f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied
          else "schema up to date")


@db_app.command("backup")
def db_backup(file: Annotated[Path, typer.Argument(help="The backup file to write (tar).")]
              ) -> None:
    """Back up the database (pg_dump custom format) and the evidence photos into FILE."""
    from layers.db import backup

    settings = Settings()
    with reported_errors():
        done = backup.backup(database.conninfo(settings), settings.data_dir, file,
                             pg_bindir=settings.pg_bindir)
    print(f"backed up: database {done.database_bytes:,} bytes, {done.photos} photo(s) -> {file}")


@db_app.command("restore")
def db_restore(file: Annotated[Path, typer.Argument(help="A file from `sitewatch db backup`.")]
               ) -> None:
    """Replace the database's contents with FILE's (one transaction) and restore its photos.
    Stop the server first."""
    from layers.db import backup

    settings = Settings()
    with reported_errors():
        done = backup.restore(database.conninfo(settings), settings.data_dir, file,
                              pg_bindir=settings.pg_bindir)
    print(f"restored: database {done.database_bytes:,} bytes, {done.photos} photo(s) from "
          f"{file}")


@app.command()
def demo(
    issues: Annotated[int, typer.Option(min=0, max=5_000_000,
                                        help="How many issues to generate.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same district.")] = 20260501,
    if_empty: Annotated[bool, typer.Option("--if-empty",
                                           help="Do nothing when data exists.")] = False,
    grids_per_community: Annotated[int | None, typer.Option(
        min=1, max=999, help="Grids per community instead of 3-6 (benchmarks).")] = None,
    streets: Annotated[int, typer.Option(
        min=1, max=20, help="Adjacent streets in the district, --issues each (default: the "
                            "one demo street).")] = 1,
) -> None:
    """Load the generated demo district (empty database only)."""
    from layers.io import demo as demo_loader

    settings = Settings()
    with session(settings) as conn:
        if demo_loader.has_data(conn):
            if if_empty:
                print("database already has data; demo not loaded")
                return
            raise DomainError("the database already has data; the demo loads only into an "
                              "empty database")
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=False) as progress:
            tasks: dict[str, TaskID] = {}

            def report(step: str, done: int, total: int) -> None:
                if step not in tasks:
                    tasks[step] = progress.add_task(step, total=total)
                progress.update(tasks[step], completed=done, total=total)

            counts = demo_loader.load(conn, zone=settings.zone, n_issues=issues, seed=seed,
                                      progress=report, grids_per_community=grids_per_community,
                                      streets=streets)
    print("demo loaded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
def check(
    out: Annotated[str | None, typer.Option(help="Write the findings to a GeoJSON file.")] = None,
    min_area_m2: Annotated[float, typer.Option(min=0, help="Ignore smaller slivers.")] = 1.0,
) -> None:
    """Check the jurisdictions: gaps, overlaps, children outside parents, invalid rings."""
    from geo.quality import check_jurisdictions, summary
    from layers.views import mapdata

    with session() as conn:
        findings = check_jurisdictions(mapdata.jurisdiction_frame(conn), min_area_m2=min_area_m2)
    for row in findings.itertuples():
        area = "" if row.area_m2 != row.area_m2 else f"{row.area_m2:,.1f} m²"
        print(f"{row.kind:15} {','.join(map(str, row.codes)):40} {area:>14}  {row.detail_zh}")
    print("summary: " + ", ".join(f"{k} {v}" for k, v in summary(findings).items()))
    if out:
        findings.to_file(out, driver="GeoJSON")
        print(f"findings written to {out}")


@app.command()
def reassign(
    include_closed: Annotated[bool, typer.Option(
        "--include-closed", help="Also closed issues (only to repair wrong data).")] = False,
    note: Annotated[str | None, typer.Option(
        help="Why (at most 4,000 characters), kept with the revision of the moves.")] = None,
) -> None:
    """Re-run assignment for every open issue (after boundary or rule changes); what moves
    is stored as one revision."""
    from layers.assignment import load_assigner
    from layers.assignment import reassign as reassign_all
    from layers.revisions import Origin

    if note is not None and len(note) > 4000:
        raise typer.BadParameter("at most 4,000 characters", param_hint="--note")

    with session() as conn:
        err.print("reassigning issues ...")
        counts = reassign_all(conn, load_assigner(conn), actor=actor(),
                              origin=Origin("reassign", note=note),
                              include_closed=include_closed)
    stored = (f"; stored as revision {counts['revision']} (sitewatch revisions show"
              f" {counts['revision']})" if "revision" in counts else "")
    print(f"examined {counts['examined']}, changed {counts['changed']}{stored}")


def _calendar_day(text: str) -> date:
    """``text`` as a date, or a one-line error and exit code 1."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        err.print(f"[red]error:[/red] {text!r} is not a date (YYYY-MM-DD)")
        raise typer.Exit(1) from None


@calendar_app.command("set")
def calendar_set(
    day: Annotated[str, typer.Argument(help="YYYY-MM-DD")],
    holiday: Annotated[bool, typer.Option("--holiday/--workday",
                                          help="A day off (节假日) or a worked day (调休上班).")],
    name: Annotated[str | None, typer.Option(help="e.g. 春节, 国庆节调休")] = None,
) -> None:
    """Mark a day as a holiday or a make-up working day, for working-day deadlines."""
    from layers.catalog import calendar

    when = _calendar_day(day)
    with session() as conn:
        calendar.set_day(conn, when, working=not holiday, name=name)
    print(f"{when}: {'holiday' if holiday else 'working day'}" + (f" ({name})" if name else ""))


@calendar_app.command("unset")
def calendar_unset(day: Annotated[str, typer.Argument(help="YYYY-MM-DD")]) -> None:
    """Remove a day set by `calendar set`: it follows the week again (Monday to Friday work)."""
    from layers.catalog import calendar

    when = _calendar_day(day)
    with session() as conn:
        calendar.clear_day(conn, when)
    print(f"{when}: unset, follows the week again")


@calendar_app.command("list")
def calendar_list(year: Annotated[int, typer.Argument(min=2000, max=2100)]) -> None:
    """The holidays and make-up working days of a year."""
    from layers.catalog import calendar

    with session() as conn:
        for listed in calendar.exceptions(conn, year):
            kind = "working day" if listed.working else "holiday"
            print(f"{listed.day}  {kind:12} {listed.name or ''}")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin|supervisor|inspector|unit|viewer")],
    name: Annotated[str | None, typer.Option(
        help="The person who holds the token (shown in the audit trail and on orders).")] = None,
    unit: Annotated[str | None, typer.Option(help="Unit code or name (role unit).")] = None,
    street: Annotated[str | None, typer.Option(
        help="Confine the token to one street (街道) by its code; without it the token sees"
             " the whole district.")] = None,
    post: Annotated[str | None, typer.Option(help="The holder's post (职务).")] = None,
    mobile: Annotated[str | None, typer.Option(
        help="The holder's mobile number (for @mentions in group chats).")] = None,
    expires_days: Annotated[int | None, typer.Option(min=1, help="Expire after N days.")] = None,
    link: Annotated[bool, typer.Option(
        "--link", help="Also print a sign-in link to the field page and its QR code.")] = False,
    qr: Annotated[Path | None, typer.Option(
        help="Write the sign-in link's QR code to this PNG file (for printing).")] = None,
) -> None:
    """Create a bearer token for a named person; it is printed once, on the last line, and
    stored only as a hash."""
    from api.cli import signin

    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    settings = Settings()
    # --name is checked here rather than by typer so that its absence reads as one line.
    with session(settings) as conn, conn.transaction():
        token = tokens.create(conn, role=role, unit_code=unit, name=name or "", post=post,
                              mobile=mobile, expires_at=expires, street_code=street)
        if link or qr is not None:
            # Inside the transaction: a link that cannot be made (a viewer, a bad file name)
            # leaves no token behind.
            url = signin.link(settings.site_url, token, role=role,
                              unit=tokens.info(conn, token).unit)
            code = signin.qr(url)
            if qr is not None:
                signin.save_png(code, qr)
    if link or qr is not None:
        err.print(f"sign-in link for {name} (scan with the phone; it carries the token):")
        signin.show(code)
        print(url)
        if qr is not None:
            err.print(f"QR code written to {qr}")
    err.print(f"token for role {role} (shown once; store it now):")
    print(token)


@token_app.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(help="The token's id (see `token list`) or the token.")],
) -> None:
    """Revoke a token at once; requests with it get 401 from now on."""
    with session() as conn:
        revoked = tokens.revoke(conn, token)
    print(f"token {revoked.id} ({revoked.role}, {tokens.person(revoked.name, revoked.post)})"
          f" revoked at {revoked.revoked_at:%Y-%m-%d %H:%M:%S %z}")


@token_app.command("list")
def token_list() -> None:
    """Tokens with their role, unit and state (the tokens themselves are never stored)."""
    with session() as conn:
        listed = tokens.list_tokens(conn)
    for t in listed:
        state = "live" if t.live else ("revoked" if t.revoked_at else "expired")
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
        print(f"{t.id:>5}  {t.role:10} {t.unit or '-':10} {t.street or '-':10} {state:8}"
              f" {used:16}"
              f" {tokens.person(t.name, t.post)} {t.mobile or ''}".rstrip())


@evidence_app.command("strip")
def evidence_strip() -> None:
    """Remove metadata (EXIF position, camera) from photos stored before uploads were cleaned;
    references stay the same. With SITEWATCH_KEEP_ORIGINAL_PHOTOS each is kept for admins."""
    settings = Settings()
    with session(settings) as conn:
        cleaned, already = evidence.strip_stored(conn, settings.data_dir,
                                                 keep_original=settings.keep_original_photos)
    print(f"{cleaned} photo(s) cleaned, {already} already without metadata")


def _tls_pair(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """The certificate and key serve should use, checked as the server will load them; None
    for plain HTTP. One without the other is a usage error (exit 2), a file that cannot be
    used an error (exit 1), each one line."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = ("--tls-cert", "--tls-key") if key is None else ("--tls-key",
                                                                           "--tls-cert")
        err.print(f"[red]error:[/red] {given} needs {missing} too (or SITEWATCH_"
                  f"{missing[2:].upper().replace('-', '_')}): give both for HTTPS, or neither")
        raise typer.Exit(2)
    from api.services import certificates

    with reported_errors():
        certificates.check_pair(cert, key)
    return cert, key


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Web server processes.")] = 1,
    no_worker: Annotated[bool, typer.Option(
        "--no-worker", help="Do not start the background worker (run `sitewatch worker` "
        "as its own service instead).")] = False,
    announce: Annotated[bool, typer.Option(
        "--announce", help="Print the map URL and an admin token that expires in a day.")
                        ] = False,
    tls_cert: Annotated[Path | None, typer.Option(
        help="Serve HTTPS with this PEM certificate (chain); needs --tls-key.")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        help="The certificate's PEM private key (unencrypted); needs --tls-cert.")] = None,
) -> None:
    """Serve the API and map pages, and start the background worker beside them unless
    --no-worker (Ctrl-C stops both cleanly). With --tls-cert and --tls-key it serves HTTPS
    (`sitewatch tls make` makes both for a trial)."""
    import uvicorn

    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    tls = _tls_pair(tls_cert or settings.tls_cert, tls_key or settings.tls_key)
    # What this server binds is what its links name when SITEWATCH_PUBLIC_URL is not set.
    here = settings.model_copy(update={
        "host": host, "port": port, "tls_cert": tls and tls[0], "tls_key": tls and tls[1],
    }).site_url
    if announce:
        with session(settings) as conn:
            # Each start prints a token for the person at the console; it expires by itself,
            # so restarts do not pile up lasting admin credentials.
            token = tokens.create(conn, role="admin", name=ANNOUNCED_ADMIN_NAME,
                                  expires_at=datetime.now(UTC) + ANNOUNCED_TOKEN_LIFETIME)
        print(f"\n  Map:         {here}/maps/overview\n"
              f"  API docs:    {here}/docs\n"
              f"  Admin token: {token}\n"
              f"               (expires in 24 h; a lasting one: "
              f"sitewatch token create --role admin --name NAME)\n", flush=True)
    sys.stdout.flush()
    # proxy_headers=False: uvicorn would believe X-Forwarded-For from 127.0.0.1; the app
    # believes it only from SITEWATCH_TRUSTED_PROXIES (api.guards).
    child = None if no_worker else start_child(host, port, tls)
    try:
        uvicorn.run("api.app:create_app", factory=True, host=host, port=port,
                    workers=workers, log_level="info", proxy_headers=False,
                    ssl_certfile=tls and tls[0], ssl_keyfile=tls and tls[1])
    finally:
        if child is not None:
            stop_child(child)


if __name__ == "__main__":
    app()

"""Retention of personal data (migration 0031): reporters' names and contacts erased and the
photos of closed issues archived, ``retention_years`` after the issue closed.

The personal information protection law (个人信息保护法, art. 19) wants personal data kept no
longer than its purpose needs. A reporter's name and contact serve the handling of the case
(a question to the reporter, a reply); the photos serve its verification and the assessments
after it. Once an issue has been closed for the retention period both are erased from the live
system: the names and contacts on the issue (the only place the code keeps them: events,
notification payloads and Open311 answers never carry them) and the idempotency records of its
report (a hash of the request, which named the reporter); the photos move out of the live
store into one tar per month of report under ``<data dir>/archive/``, each with a manifest
beside it, and their download answers 410 saying where they went.

A run works in batches of closed issues, oldest first, each batch in one transaction: the
photos are written to the archive (and flushed to disk) before the transaction that marks
them archived commits, and deleted from the live store only after it did, so a crash loses
nothing (at worst a photo is archived twice). Memory is bounded by the batch. A run is an
audited act: a ``retention_run`` row (who, when, cutoff, counts) and a ``retention`` event in
the trail of every issue it changed.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from psycopg.types.json import Jsonb

from layers.errors import Conflict, DomainError
from layers.issues import evidence
from layers.vocab import CLOSED_STATUSES

Progress = Callable[[int, int], None]
BATCH = 500
ACTION = "retention"


def _silent(done: int, total: int) -> None:
    """No progress output."""


class Archived(DomainError, status=410, code="archived", title="Gone"):
    """The photo was moved to the archive by a retention run."""


@dataclass(frozen=True)
class Counts:
    """What a run erased or archived (or, dry, would)."""

    issues: int  # closed issues in scope (their reporter data erased, photos archived)
    with_personal_data: int  # of those, the ones that still had a name or contact
    photos: int  # photos moved to the archive
    idempotency: int  # idempotency records forgotten


@dataclass(frozen=True)
class Report:
    """A retention run: its id (None when dry), cutoff and counts."""

    run_id: int | None
    cutoff: datetime
    years: int
    dry_run: bool
    counts: Counts


def cutoff(now: datetime, years: int) -> datetime:
    """``years`` calendar years before ``now`` (29 February goes to the 28th)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


# The issues in scope: closed before the cutoff, not handled by an earlier run. reported_at
# bounds the scan to the months before the cutoff (closed_at >= reported_at, 0001).
_IN_SCOPE = """
    i.status = ANY(%(closed)s) AND i.closed_at < %(cutoff)s AND i.reported_at < %(cutoff)s
    AND i.personal_erased_at IS NULL
"""

# Photos (sha256) of the given issues that no issue outside the scope names, on the issue or
# as evidence of one of its events, and not archived yet.
_ARCHIVABLE = """
WITH batch AS MATERIALIZED (
    SELECT i.id, i.public_id, i.reported_at, i.photos FROM issue i
    WHERE i.id = ANY(%(ids)s) AND i.reported_at < %(cutoff)s
), refs AS (
    SELECT b.id AS issue_id, b.public_id, b.reported_at, r.ref
    FROM batch b CROSS JOIN LATERAL jsonb_array_elements_text(b.photos) r(ref)
    UNION
    -- Each issue's own events (their issue index), not every event with evidence.
    SELECT b.id, b.public_id, b.reported_at, r.ref
    FROM batch b
    CROSS JOIN LATERAL (SELECT e.evidence FROM issue_event e WHERE e.issue_id = b.id) e
    CROSS JOIN LATERAL jsonb_array_elements_text(e.evidence) r(ref)
)
SELECT v.sha256, v.media_type, array_agg(DISTINCT r.public_id ORDER BY r.public_id) AS issues,
       array_agg(DISTINCT r.issue_id) AS issue_ids,
       to_char(min(r.reported_at), 'YYYY-MM') AS month
FROM refs r JOIN evidence v ON 'sha256:' || v.sha256 = r.ref
WHERE v.archived_at IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM issue o WHERE o.photos @> jsonb_build_array(r.ref)
        AND NOT (o.status = ANY(%(closed)s) AND o.closed_at < %(cutoff)s))
  AND NOT EXISTS (
      SELECT 1 FROM issue_event oe JOIN issue o ON o.id = oe.issue_id
      WHERE oe.evidence @> jsonb_build_array(r.ref)
        AND NOT (o.status = ANY(%(closed)s) AND o.closed_at < %(cutoff)s))
GROUP BY v.sha256, v.media_type
ORDER BY v.sha256
"""


def _params(when: datetime, **more: Any) -> dict[str, Any]:
    return {"closed": list(CLOSED_STATUSES), "cutoff": when, **more}


def plan(conn: psycopg.Connection[Any], when: datetime, *, batch: int = BATCH) -> Counts:
    """What a run with this cutoff would do (a dry run), read batch by batch; nothing changes."""
    issues = personal = photos = forgotten = 0
    for ids in _batches(conn, when, batch):
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE i.reporter IS NOT NULL"
            " OR i.reporter_contact IS NOT NULL),"
            " (SELECT count(*) FROM idempotency_key k JOIN issue_key ik"
            "  ON ik.public_id = k.public_id WHERE ik.id = ANY(%(ids)s))"
            " FROM issue i WHERE i.id = ANY(%(ids)s) AND i.reported_at < %(cutoff)s",
            _params(when, ids=ids)).fetchone()
        assert row is not None
        issues += len(ids)
        personal += int(row[0])
        forgotten += int(row[1])
        photos += len(conn.execute(_ARCHIVABLE, _params(when, ids=ids)).fetchall())
    return Counts(issues, personal, photos, forgotten)


def _next_batch(conn: psycopg.Connection[Any], when: datetime, size: int,
                after: tuple[datetime, int] | None, *, lock: bool) -> list[tuple[datetime, int]]:
    """(reported_at, id) of the next ``size`` issues in scope after ``after``, oldest first.
    Keyset, never from the start again: the rows a batch handled leave dead entries at the
    head of the scope's index, which a scan from the start would wade through every time."""
    keyset = "AND (i.reported_at, i.id) > (%(at)s, %(id)s)" if after else ""
    rows = conn.execute(
        f"SELECT i.reported_at, i.id FROM issue i WHERE {_IN_SCOPE} {keyset}"  # noqa: S608 -- fixed fragments, values are parameters
        " ORDER BY i.reported_at, i.id LIMIT %(size)s" + (" FOR UPDATE" if lock else ""),
        _params(when, size=size, at=after[0] if after else None,
                id=after[1] if after else None)).fetchall()
    return [(r[0], int(r[1])) for r in rows]


def _batches(conn: psycopg.Connection[Any], when: datetime, size: int) -> Iterator[list[int]]:
    """Ids of the issues in scope, oldest first, ``size`` at a time (a dry run's reading)."""
    after: tuple[datetime, int] | None = None
    while rows := _next_batch(conn, when, size, after, lock=False):
        after = rows[-1]
        yield [i for _, i in rows]


def count_in_scope(conn: psycopg.Connection[Any], when: datetime) -> int:
    """Closed issues a run with this cutoff would handle."""
    row = conn.execute(f"SELECT count(*) FROM issue i WHERE {_IN_SCOPE}",  # noqa: S608 -- a fixed fragment
                       _params(when)).fetchone()
    return int(row[0]) if row else 0


def run(conn: psycopg.Connection[Any], *, data_dir: Path, years: int, now: datetime,
        actor: str, dry_run: bool = False, batch: int = BATCH,
        progress: Progress = _silent) -> Report:
    """Erase and archive what ``years`` of retention allow at ``now``; a dry run only counts.

    ``conn`` must not be inside a transaction: each batch commits on its own.
    """
    if years < 1:
        raise ValueError("retention_years must be at least 1")
    when = cutoff(now, years)
    if dry_run:
        return Report(None, when, years, True, plan(conn, when, batch=batch))
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise Conflict("a retention run commits batch by batch: start it outside a transaction")
    with conn.transaction():
        row = conn.execute("INSERT INTO retention_run (actor, cutoff, years) VALUES (%s, %s, %s)"
                           " RETURNING id", [actor, when, years]).fetchone()
    assert row is not None
    run_id = int(row[0])
    total = count_in_scope(conn, when)
    done = [0, 0, 0, 0]
    after: tuple[datetime, int] | None = None
    try:
        while True:
            with conn.transaction():
                rows = _next_batch(conn, when, batch, after, lock=True)
                if not rows:
                    break
                after = rows[-1]
                counts, archived = _one_batch(conn, data_dir, when, run_id,
                                              [i for _, i in rows])
                conn.execute(
                    "UPDATE retention_run SET issues_erased = issues_erased + %s,"
                    " photos_archived = photos_archived + %s,"
                    " idempotency_forgotten = idempotency_forgotten + %s WHERE id = %s",
                    [counts.issues, counts.photos, counts.idempotency, run_id])
            # Only now that the archive is committed does the live copy go.
            for path in archived:
                path.unlink(missing_ok=True)
            done = [d + c for d, c in zip(done, (counts.issues, counts.with_personal_data,
                                                 counts.photos, counts.idempotency),
                                          strict=True)]
            progress(done[0], total)
    except BaseException as exc:
        with conn.transaction():
            conn.execute("UPDATE retention_run SET state = 'failed', finished_at = now(),"
                         " error = %s WHERE id = %s", [type(exc).__name__, run_id])
        raise
    with conn.transaction():
        conn.execute("UPDATE retention_run SET state = 'done', finished_at = now()"
                     " WHERE id = %s", [run_id])
    return Report(run_id, when, years, False, Counts(*done))


def _one_batch(conn: psycopg.Connection[Any], data_dir: Path, when: datetime, run_id: int,
               ids: list[int]) -> tuple[Counts, list[Path]]:
    """Archive, erase and record one batch inside the caller's transaction; the live photo
    files to delete once it commits."""
    photos = conn.execute(_ARCHIVABLE, _params(when, ids=ids)).fetchall()
    live = _archive(data_dir, run_id, photos)
    for sha, month in ((p[0], p[4]) for p in photos):
        conn.execute("UPDATE evidence SET archived_at = now(), archive = %s WHERE sha256 = %s",
                     [f"photos-{month}.tar", sha])
    per_issue: dict[int, int] = {}
    for photo in photos:
        for issue_id in photo[3]:
            per_issue[issue_id] = per_issue.get(issue_id, 0) + 1
    forgotten = conn.execute(
        "DELETE FROM idempotency_key k USING issue_key ik"
        " WHERE ik.public_id = k.public_id AND ik.id = ANY(%s) RETURNING ik.id", [ids]
    ).fetchall()
    forgot = {int(r[0]) for r in forgotten}
    erased = conn.execute(
        "UPDATE issue i SET reporter = NULL, reporter_contact = NULL, personal_erased_at = now()"
        " FROM (SELECT id, reporter IS NOT NULL OR reporter_contact IS NOT NULL AS personal"
        "       FROM issue WHERE id = ANY(%(ids)s) AND reported_at < %(cutoff)s) was"
        " WHERE i.id = was.id AND i.reported_at < %(cutoff)s RETURNING i.id, was.personal",
        _params(when, ids=ids)).fetchall()
    personal = {int(r[0]) for r in erased if r[1]}
    touched = sorted(personal | forgot | set(per_issue))
    if touched:
        conn.execute(
            "INSERT INTO issue_event (issue_id, actor, actor_role, action, from_status,"
            " to_status, note, data)"
            " SELECT i.id, 'system:retention', 'system', %s, i.status, i.status,"
            " '个人信息保存期满：上报人信息已删除，照片已归档 / retention period over: reporter"
            " data erased, photos archived',"
            " jsonb_build_object('run', %s::bigint, 'reporter_erased', i.id = ANY(%s),"
            "                    'photos_archived', coalesce((%s::jsonb ->> i.id::text)::int, 0))"
            " FROM issue i WHERE i.id = ANY(%s) AND i.reported_at < %s ORDER BY i.id",
            [ACTION, run_id, sorted(personal), Jsonb({str(k): v for k, v in per_issue.items()}),
             touched, when])
    return Counts(len(ids), len(personal), len(photos), len(forgot)), live


def archive_dir(data_dir: Path) -> Path:
    """Where the photo archives are kept."""
    return data_dir / "archive"


def _archive(data_dir: Path, run_id: int, photos: list[tuple[Any, ...]]) -> list[Path]:
    """Append the photos (and kept originals) to their month's tar and manifest, flushed to
    disk; the live files they came from."""
    folder = archive_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    live: list[Path] = []
    by_month: dict[str, list[tuple[Any, ...]]] = {}
    for photo in photos:
        by_month.setdefault(photo[4], []).append(photo)
    at = datetime.now().astimezone().isoformat(timespec="seconds")
    for month, group in sorted(by_month.items()):
        tar_path = folder / f"photos-{month}.tar"
        lines = []
        with _appending(tar_path) as tar:
            for sha, media_type, issues, _ids, _month in group:
                members = []
                for original in (False, True):
                    path = evidence.stored_file(data_dir, sha, media_type, original=original)
                    if path.is_file():
                        name = f"{'originals/' if original else ''}{sha}{path.suffix}"
                        tar.add(str(path), arcname=name, recursive=False)
                        members.append(name)
                        live.append(path)
                lines.append(json.dumps({"sha256": sha, "media_type": media_type,
                                         "members": members, "issues": list(issues),
                                         "run": run_id, "archived_at": at},
                                        ensure_ascii=False))
        with open(folder / f"photos-{month}.manifest.jsonl", "a", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in lines))
            out.flush()
            os.fsync(out.fileno())
    return live


@contextmanager
def _appending(path: Path) -> Iterator[tarfile.TarFile]:
    """The month's tar opened for appending (created if new), flushed to disk on exit."""
    with tarfile.open(path, "a") as tar:
        yield tar
    with open(path, "rb+") as synced:
        os.fsync(synced.fileno())


def last_runs(conn: psycopg.Connection[Any], limit: int = 10) -> list[tuple[Any, ...]]:
    """The latest runs: id, actor, started, finished, cutoff, state and counts."""
    return conn.execute(
        "SELECT id, actor, started_at, finished_at, cutoff, state, issues_erased,"
        " photos_archived, idempotency_forgotten FROM retention_run ORDER BY id DESC"
        " LIMIT %s", [limit]).fetchall()


def refuse_archived(conn: psycopg.Connection[Any], ref: str) -> None:
    """Raise :class:`Archived` (410) when the photo ``ref`` was moved to the archive."""
    row = conn.execute("SELECT archive, archived_at FROM evidence WHERE sha256 = %s",
                       [ref.removeprefix("sha256:")]).fetchone()
    if row is not None and row[0] is not None:
        raise Archived(
            f"照片已于 {row[1]:%Y-%m-%d} 因个人信息保存期满归档至 archive/{row[0]}，请联系管理员"
            f" / the photo was archived on {row[1]:%Y-%m-%d} (retention period over) to"
            f" archive/{row[0]}; ask an administrator", details={"archive": row[0]})

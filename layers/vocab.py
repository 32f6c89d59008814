"""The domain's words, each list written once: issue statuses, roles, unit kinds, jurisdiction
levels, issue sources and lifecycle actions, as ``Literal`` types with their values as tuples.

The tuples are read off the types (:func:`typing.get_args`), so a word is added in one place
and both mypy and the runtime checks see it. The database states the same lists in its CHECK
constraints, and "open" and "overdue" in SQL are the functions ``issue_is_open`` and
``issue_is_overdue`` (migration 0015); tests/layers/test_vocab.py holds the two sides equal.

>>> OPEN_STATUSES + CLOSED_STATUSES == STATUSES
True
>>> DISMISSED_STATUSES
('rejected', 'duplicate')
"""

from __future__ import annotations

from typing import Literal, get_args

# -- issue status (the lifecycle: reported -> assigned -> rectified -> verified) -------------

#: Open and waiting for the responsible unit to act: a new issue starts here (reported while
#: no unit is known, assigned once one is).
AwaitingUnit = Literal["reported", "assigned"]
#: Still open: the unit's work, or its rectification waiting for the supervisor's check.
OpenStatus = Literal[AwaitingUnit, "rectified"]
#: Not problems on the ground: refused reports and repeats of another issue.
Dismissed = Literal["rejected", "duplicate"]
#: Closed: checked as fixed, or dismissed. Closed issues carry ``closed_at``.
ClosedStatus = Literal["verified", Dismissed]
Status = Literal[OpenStatus, ClosedStatus]

AWAITING_UNIT_STATUSES: tuple[AwaitingUnit, ...] = get_args(AwaitingUnit)
OPEN_STATUSES: tuple[OpenStatus, ...] = get_args(OpenStatus)
DISMISSED_STATUSES: tuple[Dismissed, ...] = get_args(Dismissed)
CLOSED_STATUSES: tuple[ClosedStatus, ...] = get_args(ClosedStatus)
STATUSES: tuple[Status, ...] = get_args(Status)

#: The campaign's five rectification actions (五大整治行动) a category belongs to: farmers'
#: markets and their surroundings, construction sites, city appearance, residential compounds,
#: citizens' civilised behaviour (domain/CAMPAIGN.md).
CampaignAction = Literal["market", "construction", "appearance", "compound", "behaviour"]
CAMPAIGN_ACTIONS: tuple[CampaignAction, ...] = get_args(CampaignAction)

# -- who calls ------------------------------------------------------------------------------

#: A token's role. Which role may do what is the access table's business, not this list's.
Role = Literal["admin", "supervisor", "inspector", "unit", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)

# -- who answers for it --------------------------------------------------------------------

#: A responsible unit's kind: a community on its own ground (属地) or a functional department
#: (职能部门).
UnitKind = Literal["territorial", "functional"]
UNIT_KINDS: tuple[UnitKind, ...] = get_args(UnitKind)

# -- where ----------------------------------------------------------------------------------

#: Jurisdiction levels (街道 > 社区 > 网格), coarsest first: each level's parent is the one
#: before it.
Level = Literal["street", "community", "grid"]
LEVELS: tuple[Level, ...] = get_args(Level)

# -- how an issue was found -----------------------------------------------------------------

#: 自查, 督查, 测评, 市民.
Source = Literal["self_inspection", "supervision", "external_assessment", "citizen"]
SOURCES: tuple[Source, ...] = get_args(Source)

# -- what a caller may do to an issue -------------------------------------------------------

#: The transitions of layers.issues.lifecycle (an audit trail also records system actions
#: such as ``report``, ``order`` and ``escalate``, which no caller requests).
Action = Literal["assign", "rectify", "verify", "reopen", "reject", "mark_duplicate",
                 "extend_deadline"]
ACTIONS: tuple[Action, ...] = get_args(Action)

"""Who may do what: the one table of permissions by role.

Every check of a caller's role reads this table: the route dependencies
(``api.auth.require_permission``), the issue lifecycle (an action's permission is its own
name), the source a single report may claim (``layers.issues.records``), Open311's
``api_key`` and the rules of ``layers.auth.access``. ``docs/access.md`` carries the same
table for people; ``tests/api/test_access_table.py`` fails when the two disagree, and walks
every route with every role's token.

A unit holds some permissions for its own things only: the issues it answers for (as lead,
territorial or functional unit), the orders and the accountability register addressed to it.
Those permissions are in :data:`UNIT_OWN_ONLY`; the check of "own" is the caller's
(``layers.auth.access``).
"""

from __future__ import annotations

from typing import Literal, get_args

from layers.vocab import Action, Role

Permission = Literal[
    # issues and photos
    "report", "report_as_supervision", "upload_evidence", "read_photos",
    "read_issue_details", "read_personal_data", "read_original_photo",
    # the lifecycle: each action is its own permission (layers.issues.lifecycle.RULES)
    Action,
    # supervision and inspections
    "read_orders", "write_orders", "acknowledge_order", "read_accountability",
    "read_inspections", "plan_inspection", "inspect",
    # the catalog and the files that fill it
    "edit_catalog", "import_layers", "import_issues",
    # revisions: the bulk reassignments, who gained and lost which issues
    "read_revisions",
    # notifications: subscriptions and deliveries
    "manage_notifications",
]

_STAFF: tuple[Role, ...] = ("admin", "supervisor", "inspector", "viewer")
_EVERYONE: tuple[Role, ...] = ("admin", "supervisor", "inspector", "viewer", "unit")
_OFFICE: tuple[Role, ...] = ("admin", "supervisor")

#: The roles holding each permission.
PERMISSIONS: dict[Permission, tuple[Role, ...]] = {
    "report": ("admin", "supervisor", "inspector"),
    # Sources that weigh in scores and accountability (supervision, external_assessment).
    "report_as_supervision": _OFFICE,
    # Leaders (viewer) read; the people in the field and the units take the photos.
    "upload_evidence": ("admin", "supervisor", "inspector", "unit"),
    "read_photos": _EVERYONE,
    "read_issue_details": _EVERYONE,  # the audit trail and the photo files
    "read_personal_data": _OFFICE,  # reporters' names and contacts
    "read_original_photo": ("admin",),  # the upload as sent, with its EXIF
    "assign": _OFFICE,
    "rectify": ("admin", "unit"),
    "verify": ("supervisor",),
    "reopen": ("supervisor",),
    "reject": _OFFICE,
    "mark_duplicate": _OFFICE,
    "extend_deadline": ("supervisor",),
    "read_orders": _EVERYONE,
    "write_orders": _OFFICE,  # issue and escalate supervision orders
    "acknowledge_order": ("admin", "unit"),
    "read_accountability": _EVERYONE,
    # Inspections are unannounced: no unit sees the plans.
    "read_inspections": _STAFF,
    "plan_inspection": _OFFICE,
    "inspect": ("admin", "supervisor", "inspector"),  # record visits and findings
    "edit_catalog": ("admin",),  # units, categories, site layers, jurisdictions, sites
    "import_layers": ("admin",),  # jurisdictions, sites, responsibility rules
    "import_issues": _OFFICE,
    "read_revisions": _OFFICE,
    # Subscriptions name outbound targets the server will post to: admin only.
    "manage_notifications": ("admin",),
}

#: Permissions a unit holds for its own issues, orders and register only.
UNIT_OWN_ONLY: frozenset[Permission] = frozenset({
    "read_photos", "read_issue_details", "rectify", "read_orders", "acknowledge_order",
    "read_accountability"})

#: Every permission, in the order of the table (tests check each has its row).
PERMISSION_NAMES: tuple[Permission, ...] = get_args(Permission)


def holders(permission: Permission) -> tuple[Role, ...]:
    """The roles holding ``permission``."""
    return PERMISSIONS[permission]


def allows(role: str, permission: Permission) -> bool:
    """Whether ``role`` holds ``permission`` (a unit perhaps for its own things only)."""
    return role in PERMISSIONS[permission]


def own_only(role: str, permission: Permission) -> bool:
    """Whether ``role`` holds ``permission`` for its own unit's things only."""
    return role == "unit" and permission in UNIT_OWN_ONLY and allows(role, permission)


def refusal(role: str, permission: Permission) -> str:
    """The message of a refusal: who may, in Chinese first, then English."""
    needs = " or ".join(holders(permission))
    return (f"角色 {role!r} 无此权限（需 {needs}）/ role {role!r} may not {permission}; "
            f"needs {needs}")

"""The staff actions the audit log records, with the words the admin page shows for each."""

from __future__ import annotations

QUALIFICATION_GRANTED = "qualification.granted"
QUALIFICATION_REVOKED = "qualification.revoked"
ROLE_CHANGED = "member.role_changed"
MEMBER_CREATED = "member.created"
MEMBER_UPDATED = "member.updated"
MEMBER_APPROVED = "member.approved"
MEMBER_DEACTIVATED = "member.deactivated"
MEMBER_IMPORTED = "member.imported"
MEMBER_DELETED = "member.deleted"
MEMBER_INVITED = "member.invited"
MEMBER_REJECTED = "member.rejected"
INVITATION_REVOKED = "member.invitation_revoked"
BOOKING_CANCELLED_FOR = "booking.cancelled_for_member"
PRINT_CANCELLED_FOR = "print.cancelled_for_member"
POLICY_CHANGED = "policy.changed"
BRIDGE_REGISTERED = "bridge.registered"
BRIDGE_REKEYED = "bridge.rekeyed"
TWO_FACTOR_RESET = "member.2fa_reset"
TWO_FACTOR_REQUIRED = "lab.2fa_required"
KIOSK_REGISTERED = "kiosk.registered"
KIOSK_LINK_ISSUED = "kiosk.link_issued"
KIOSK_REVOKED = "kiosk.revoked"

LABELS: dict[str, str] = {
    QUALIFICATION_GRANTED: "Qualification granted",
    QUALIFICATION_REVOKED: "Qualification revoked",
    ROLE_CHANGED: "Role changed",
    MEMBER_CREATED: "Member created",
    MEMBER_UPDATED: "Member changed",
    MEMBER_APPROVED: "Member approved",
    MEMBER_DEACTIVATED: "Member deactivated",
    MEMBER_IMPORTED: "Member imported",
    MEMBER_DELETED: "Member deleted",
    MEMBER_INVITED: "Member invited",
    MEMBER_REJECTED: "Sign-up rejected",
    INVITATION_REVOKED: "Invitation withdrawn",
    BOOKING_CANCELLED_FOR: "Someone else's booking cancelled",
    PRINT_CANCELLED_FOR: "Someone else's queued print cancelled",
    POLICY_CHANGED: "Policy changed",
    BRIDGE_REGISTERED: "Bridge registered",
    BRIDGE_REKEYED: "Bridge re-keyed",
    TWO_FACTOR_RESET: "Two-factor sign-in reset",
    TWO_FACTOR_REQUIRED: "Two-factor requirement changed",
    KIOSK_REGISTERED: "Kiosk registered",
    KIOSK_LINK_ISSUED: "Kiosk activation link issued",
    KIOSK_REVOKED: "Kiosk revoked",
}

# Keys never written into an entry's detail, whatever a caller passes.
SECRET_KEYS = frozenset({"password", "password_hash", "pin", "pin_hash", "token", "token_hash", "badge",
                         "badge_uid", "badge_hash", "secret", "totp_secret", "key"})


def label(action: str) -> str:
    return LABELS.get(action, action)


def clean_detail(detail: dict[str, object]) -> dict[str, object]:
    """The detail without secret-looking keys (at any depth of nested dicts)."""
    out: dict[str, object] = {}
    for key, value in detail.items():
        if key.lower() in SECRET_KEYS:
            continue
        out[key] = clean_detail(value) if isinstance(value, dict) else value
    return out


def changes(old: dict[str, object], new: dict[str, object]) -> dict[str, object]:
    """The fields whose value differs, as {field: {"from": old, "to": new}} (a field only one side has counts)."""
    out: dict[str, object] = {}
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out[key] = {"from": old.get(key), "to": new.get(key)}
    return out

"""Roles from an identity provider's groups: the mapping a lab writes in FABLAB_OIDC_ROLE_MAP or
FABLAB_LDAP_ROLE_MAP, e.g. "admin=fablab-admins,steward=fablab-stewards;laser-trainers".

Each entry is role=group[;group...]; a member in several mapped groups gets the highest role. Group names are
compared case-insensitively (LDAP CNs and Keycloak paths differ only in case across setups). A member in no
mapped group gets `default` (None: leave the member's role as it is)."""

from __future__ import annotations

from collections.abc import Iterable

RANKS = {"member": 0, "steward": 1, "admin": 2}


class RoleMapError(ValueError):
    """The setting is malformed; the message names the entry."""


def parse_role_map(raw: str) -> dict[str, str]:
    """group (lower case) -> role."""
    out: dict[str, str] = {}
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        role, sep, groups = entry.partition("=")
        role = role.strip().lower()
        if not sep or role not in RANKS:
            raise RoleMapError(f"{entry!r}: write role=group, with role one of member, steward, admin")
        names = [g.strip().lower() for g in groups.split(";") if g.strip()]
        if not names:
            raise RoleMapError(f"{entry!r}: no group named")
        for name in names:
            if name in out and RANKS[out[name]] > RANKS[role]:
                continue
            out[name] = role
    return out


def role_for_groups(groups: Iterable[str], mapping: dict[str, str], default: str | None = None) -> str | None:
    """The highest role any of the groups maps to; `default` when none does."""
    best: str | None = None
    for group in groups:
        # Keycloak sends paths ("/fablab/stewards"); match the full path or its last part.
        key = group.strip().lower()
        role = mapping.get(key) or mapping.get(key.rsplit("/", 1)[-1])
        if role is not None and (best is None or RANKS[role] > RANKS[best]):
            best = role
    return best if best is not None else default

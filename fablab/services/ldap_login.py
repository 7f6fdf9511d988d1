"""Signing in with the lab's LDAP directory (OpenLDAP, Active Directory, FreeIPA...): the password is checked
by binding as the person (never by comparing hashes), then their email, name and groups go to
services/identities.py, which finds, links or creates the member and lets mapped groups decide the role.

The person's entry is found one of two ways:
- DN template (FABLAB_LDAP_BIND_DN = "uid={username},ou=people,dc=lab,dc=example"): bind to it directly;
- search-then-bind: as the service account (or anonymously), search FABLAB_LDAP_SEARCH_BASE with
  FABLAB_LDAP_SEARCH_FILTER; exactly one entry must match, then bind as it.

What is typed goes into DNs and filters escaped, so "*)(uid=*" is a name, not a filter. An empty password
is refused before any bind: a simple bind with a DN and no password is an anonymous bind, which most
servers let "succeed". With ldaps:// or STARTTLS the certificate and host name are verified (against
FABLAB_LDAP_CAFILE, else the system's CAs). A directory that is down, slow, misconfigured or fails TLS
raises `DirectoryUnavailable` after a short timeout, so local accounts still sign in."""

from __future__ import annotations

import logging
import ssl
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# ldap3 2.9 imports names that pyasn1 0.6 deprecated (tagMap, typeMap): harmless, but an error under -W error.
# It ships no type information either.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="ldap3")
    import ldap3  # type: ignore[import-untyped]
    from ldap3.core.exceptions import LDAPException  # type: ignore[import-untyped]
    from ldap3.utils.conv import escape_filter_chars  # type: ignore[import-untyped]
    from ldap3.utils.dn import escape_rdn, parse_dn  # type: ignore[import-untyped]

from ..domain.role_mapping import RoleMapError, parse_role_map
from .identities import ExternalIdentity, ExternalSignIn, sign_in_external

log = logging.getLogger(__name__)

PROVIDER = "ldap"
UNAVAILABLE_MESSAGE = "The lab's directory is not reachable right now; try again later or ask staff."
DEFAULT_FILTER = "(|(uid={username})(mail={username}))"
# Read from the person's entry: OpenLDAP/FreeIPA names, and Active Directory's.
PERSON_ATTRIBUTES = ["mail", "cn", "displayName", "uid", "sAMAccountName", "memberOf", "entryUUID", "objectGUID"]
# The directory's answer to a bind that means "not this person with this password", as opposed to trouble.
REFUSED_BIND = {"invalidCredentials", "invalidDNSyntax", "noSuchObject", "insufficientAccessRights",
                "unwillingToPerform", "inappropriateAuthentication"}
MAX_USERNAME = 254
MAX_GROUPS = 1000


class DirectoryUnavailable(Exception):
    """The directory could not be asked: down, too slow, TLS failed, or the lab's settings are wrong.
    The message is for the log (no password in it); people see UNAVAILABLE_MESSAGE."""


@dataclass(frozen=True)
class LdapSettings:
    url: str
    starttls: bool = False
    bind_dn: str = ""
    search_base: str = ""
    search_filter: str = DEFAULT_FILTER
    service_dn: str = ""
    service_password: str = ""
    group_base: str = ""
    role_map: str = ""
    cafile: str = ""
    new_members: str = "create"
    timeout: int = 5

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LdapSettings | None:
        """The lab's LDAP settings, or None when LDAP sign-in is off (no FABLAB_LDAP_URL)."""
        url = str(config.get("FABLAB_LDAP_URL") or "").strip()
        if not url:
            return None
        return cls(url=url, starttls=bool(config.get("FABLAB_LDAP_STARTTLS")),
                   bind_dn=str(config.get("FABLAB_LDAP_BIND_DN") or "").strip(),
                   search_base=str(config.get("FABLAB_LDAP_SEARCH_BASE") or "").strip(),
                   search_filter=str(config.get("FABLAB_LDAP_SEARCH_FILTER") or DEFAULT_FILTER).strip(),
                   service_dn=str(config.get("FABLAB_LDAP_SERVICE_DN") or "").strip(),
                   service_password=str(config.get("FABLAB_LDAP_SERVICE_PASSWORD") or ""),
                   group_base=str(config.get("FABLAB_LDAP_GROUP_BASE") or "").strip(),
                   role_map=str(config.get("FABLAB_LDAP_ROLE_MAP") or ""),
                   cafile=str(config.get("FABLAB_LDAP_CAFILE") or "").strip(),
                   new_members=str(config.get("FABLAB_LDAP_NEW_MEMBERS") or "create").strip().lower(),
                   timeout=max(1, int(config.get("FABLAB_LDAP_TIMEOUT", 5))))

    def problems(self) -> list[str]:
        """What is wrong with the settings (empty: usable). Checked at each sign-in, logged, never shown."""
        out: list[str] = []
        parts = urlsplit(self.url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            out.append(f"FABLAB_LDAP_URL {self.url!r}: write ldap://host[:port] or ldaps://host[:port]")
        if self.bind_dn and "{username}" not in self.bind_dn:
            out.append("FABLAB_LDAP_BIND_DN has no {username}")
        if not self.bind_dn and not self.search_base:
            out.append("set FABLAB_LDAP_BIND_DN (a DN template) or FABLAB_LDAP_SEARCH_BASE (search-then-bind)")
        if not self.bind_dn and "{username}" not in self.search_filter:
            out.append("FABLAB_LDAP_SEARCH_FILTER has no {username}")
        if self.cafile and not Path(self.cafile).is_file():
            out.append(f"FABLAB_LDAP_CAFILE {self.cafile!r} is not a readable file")
        if self.new_members not in ("create", "link"):
            out.append("FABLAB_LDAP_NEW_MEMBERS: write create or link")
        try:
            parse_role_map(self.role_map)
        except RoleMapError as exc:
            out.append(f"FABLAB_LDAP_ROLE_MAP {exc}")
        return out

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.url).scheme == "ldaps" or self.starttls


@dataclass(frozen=True)
class DirectoryPerson:
    dn: str
    subject: str  # entryUUID (OpenLDAP) or objectGUID (AD): survives renames; else the DN
    email: str | None
    name: str
    groups: list[str]


class _VerifyingTls(ldap3.Tls):  # type: ignore[misc]
    """ldap3's own host name check goes through ssl.match_hostname (deprecated, gone in Python 3.12); here
    the ssl module checks the certificate and the host name itself, as for HTTPS."""

    def __init__(self, cafile: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED, ca_certs_file=cafile or None)

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        context = ssl.create_default_context(cafile=self.ca_certs_file)  # CERT_REQUIRED, check_hostname
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # Kept on the connection before the handshake, so a failed one leaves a socket the caller can close.
        connection.socket = context.wrap_socket(connection.socket, server_hostname=connection.server.host,
                                                do_handshake_on_connect=False)
        if do_handshake:
            connection.socket.do_handshake()


def _server(settings: LdapSettings) -> ldap3.Server:
    parts = urlsplit(settings.url)
    ldaps = parts.scheme == "ldaps"
    return ldap3.Server(parts.hostname, port=parts.port or (636 if ldaps else 389), use_ssl=ldaps,
                        tls=_VerifyingTls(settings.cafile), get_info=ldap3.NONE, connect_timeout=settings.timeout)


def _open(settings: LdapSettings, user: str | None = None, password: str | None = None) -> ldap3.Connection:
    """A connection, encrypted when the settings say so, not yet bound. Raises LDAPException."""
    conn = ldap3.Connection(_server(settings), user=user, password=password, receive_timeout=settings.timeout,
                            raise_exceptions=False, read_only=True, auto_referrals=False)
    try:
        conn.open()
        if settings.starttls and not conn.server.ssl and not conn.start_tls():
            raise DirectoryUnavailable(f"STARTTLS failed: {conn.result.get('description')}")
    except BaseException:
        _close(conn)
        raise
    return conn


def _close(conn: ldap3.Connection | None) -> None:
    if conn is None:
        return
    try:
        conn.unbind()
    except LDAPException:
        pass
    # After a failed open or TLS handshake ldap3 leaves its socket open and the connection marked closed.
    sock = getattr(conn, "socket", None)
    if sock is not None:
        sock.close()


def _bind_as_person(settings: LdapSettings, dn: str, password: str) -> ldap3.Connection | None:
    """A connection bound as `dn` if the directory accepts the password, else None."""
    conn = _open(settings, dn, password)
    try:
        if conn.bind():
            return conn
        description = str(conn.result.get("description", ""))
    except BaseException:
        _close(conn)
        raise
    _close(conn)
    if description in REFUSED_BIND:
        return None
    raise _bind_trouble("the person's bind", description)


def _bind_trouble(who: str, description: str) -> DirectoryUnavailable:
    if description == "confidentialityRequired":
        return DirectoryUnavailable(f"{who} answered confidentialityRequired: the directory requires TLS for "
                                    "binds, use ldaps:// or FABLAB_LDAP_STARTTLS")
    return DirectoryUnavailable(f"{who} answered {description}")


def _entries(conn: ldap3.Connection) -> list[dict[str, Any]]:
    return [r for r in (conn.response or []) if r.get("type") == "searchResEntry"]


def _first(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return None
    text = str(value).strip() if value is not None else ""
    return text or None


def _subject(entry: dict[str, Any]) -> str:
    raw = entry.get("raw_attributes") or {}
    if raw.get("entryUUID"):
        return raw["entryUUID"][0].decode().lower()
    if raw.get("objectGUID") and len(raw["objectGUID"][0]) == 16:
        return str(uuid.UUID(bytes_le=raw["objectGUID"][0]))
    return str(entry["dn"]).lower()


def _group_name(dn: str) -> str | None:
    """A group DN's first RDN value ("cn=stewards,ou=groups,..." -> "stewards"): what the role map names."""
    try:
        return str(parse_dn(dn)[0][1]) or None
    except (LDAPException, IndexError, ValueError):
        return None


def _read_person(conn: ldap3.Connection, dn: str) -> dict[str, Any] | None:
    conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=PERSON_ATTRIBUTES)
    found = _entries(conn)
    return found[0] if found else None


def _search_person(conn: ldap3.Connection, settings: LdapSettings, username: str) -> dict[str, Any] | None:
    query = settings.search_filter.replace("{username}", escape_filter_chars(username))
    conn.search(settings.search_base, query, search_scope=ldap3.SUBTREE, attributes=PERSON_ATTRIBUTES,
                size_limit=2)
    if conn.result.get("description") not in ("success", "sizeLimitExceeded", "noSuchObject"):
        raise DirectoryUnavailable(f"search for a person answered {conn.result.get('description')}")
    found = _entries(conn)
    if len(found) > 1:
        # Two entries for one name: signing in either would be a guess. The lab should tighten the filter.
        log.warning("LDAP sign-in refused: FABLAB_LDAP_SEARCH_FILTER matches several entries for one name")
        return None
    return found[0] if found else None


def _searched_groups(conn: ldap3.Connection, settings: LdapSettings, dn: str, uid: str | None) -> list[str]:
    """Names of the groups under FABLAB_LDAP_GROUP_BASE that list the person: groupOfNames and AD groups
    (member), groupOfUniqueNames (uniqueMember), posixGroup (memberUid)."""
    dn_value = escape_filter_chars(dn)
    parts = [f"(&(|(objectClass=groupOfNames)(objectClass=group))(member={dn_value}))",
             f"(&(objectClass=groupOfUniqueNames)(uniqueMember={dn_value}))"]
    if uid:
        parts.append(f"(&(objectClass=posixGroup)(memberUid={escape_filter_chars(uid)}))")
    conn.search(settings.group_base, f"(|{''.join(parts)})", search_scope=ldap3.SUBTREE, attributes=["cn"],
                size_limit=MAX_GROUPS)
    if conn.result.get("description") not in ("success", "sizeLimitExceeded", "noSuchObject"):
        raise DirectoryUnavailable(f"group search answered {conn.result.get('description')}")
    names = [_first(e.get("attributes") or {}, "cn") or _group_name(str(e["dn"])) for e in _entries(conn)]
    return [n for n in names if n]


def _person(entry: dict[str, Any], groups: list[str], username: str) -> DirectoryPerson:
    attributes = entry.get("attributes") or {}
    member_of = attributes.get("memberOf") or []
    names = [n for n in (_group_name(str(g)) for g in member_of[:MAX_GROUPS]) if n]
    seen: dict[str, str] = {}
    for name in names + groups:
        seen.setdefault(name.lower(), name)
    email = _first(attributes, "mail")
    name = _first(attributes, "displayName") or _first(attributes, "cn") or username
    return DirectoryPerson(dn=str(entry["dn"]), subject=_subject(entry), email=email.lower() if email else None,
                           name=name[:120], groups=list(seen.values()))


def check_password(settings: LdapSettings, username: str, password: str) -> DirectoryPerson | None:
    """The directory's person for this username, if it accepts this password; None if it does not (wrong
    password, no such person, empty input). Raises DirectoryUnavailable when it cannot be asked."""
    username = username.strip()
    if not username or not password or len(username) > MAX_USERNAME or "\x00" in username:
        return None  # before any bind: an empty password would be an anonymous bind
    problems = settings.problems()
    if problems:
        raise DirectoryUnavailable("LDAP settings: " + "; ".join(problems))
    lookup: ldap3.Connection | None = None
    person_conn: ldap3.Connection | None = None
    try:
        if settings.bind_dn:
            dn = settings.bind_dn.replace("{username}", escape_rdn(username))
            person_conn = _bind_as_person(settings, dn, password)
            if person_conn is None:
                return None
            entry = _read_person(person_conn, dn)
            if entry is None:
                raise DirectoryUnavailable("bound, but may not read the own entry (check the directory's ACLs)")
            lookup = person_conn
        else:
            lookup = _open(settings, settings.service_dn or None, settings.service_password or None)
            if not lookup.bind():
                raise _bind_trouble("the service account's bind", str(lookup.result.get("description")))
            entry = _search_person(lookup, settings, username)
            if entry is None:
                return None
            person_conn = _bind_as_person(settings, str(entry["dn"]), password)
            if person_conn is None:
                return None
        uid = _first(entry.get("attributes") or {}, "uid")
        groups = _searched_groups(lookup, settings, str(entry["dn"]), uid) if settings.group_base else []
        return _person(entry, groups, username)
    except LDAPException as exc:
        raise DirectoryUnavailable(f"{type(exc).__name__}: {exc}") from exc
    finally:
        _close(person_conn)
        if lookup is not person_conn:
            _close(lookup)


def sign_in(username: str, password: str, *, settings: LdapSettings, now: datetime) -> ExternalSignIn | None:
    """The member these directory credentials sign in (created or linked by email on first sign-in, role
    from the mapped groups), a refusal (ExternalSignIn without member), or None for wrong credentials.
    Raises DirectoryUnavailable (already logged). The caller commits."""
    try:
        person = check_password(settings, username, password)
    except DirectoryUnavailable as exc:
        log.warning("LDAP sign-in could not ask %s: %s", settings.url, exc)
        raise
    if person is None:
        return None
    identity = ExternalIdentity(provider=PROVIDER, subject=person.subject, email=person.email,
                                email_verified=True, name=person.name, groups=person.groups)
    signed = sign_in_external(identity, role_map=parse_role_map(settings.role_map),
                              create=settings.new_members == "create", now=now)
    if signed.member is None:
        log.info("LDAP sign-in of %s refused here: %s", person.dn, signed.code)
    elif signed.created or signed.linked:
        log.info("LDAP sign-in of %s %s member %s", person.dn, "created" if signed.created else "linked to",
                 signed.member.id)
    return signed

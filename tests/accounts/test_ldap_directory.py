"""services/ldap_login.py below the login page: what it reads from a real slapd, what it refuses before
asking, and how it reads the lab's settings."""

from __future__ import annotations

import logging

import pytest

from fablab.services import ldap_login
from fablab.services.ldap_login import DirectoryUnavailable, LdapSettings, check_password
from tests.support.slapd import (
    ALICE_PW,
    GROUPS,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PW,
    Slapd,
    free_port,
    person_dn,
    slapd_fixture,  # noqa: F401 (fixture)
)


def _search_settings(directory: Slapd, **overrides: object) -> LdapSettings:
    values: dict[str, object] = {"url": directory.url, "search_base": PEOPLE, "service_dn": SERVICE_DN,
                                 "service_password": SERVICE_PW, "timeout": 3}
    values.update(overrides)
    return LdapSettings(**values)  # type: ignore[arg-type]


def test_reads_mail_name_subject_and_groups_once_each(slapd) -> None:
    # memberOf and the group search both find cn=stewards: it is listed once.
    person = check_password(_search_settings(slapd, group_base=GROUPS), "alice", ALICE_PW)
    assert person is not None
    assert person.dn == person_dn("alice") and person.email == "alice@lab.example"
    assert person.name == "Alice Liddell" and person.groups == ["stewards"]
    assert len(person.subject) == 36 and person.subject == person.subject.lower()
    slapd.add_to_group("makers", "alice")  # posixGroup: only the group search sees it
    again = check_password(_search_settings(slapd, group_base=GROUPS), "alice@lab.example", ALICE_PW)
    assert again is not None and sorted(again.groups) == ["makers", "stewards"]
    assert again.subject == person.subject
    without_base = check_password(_search_settings(slapd), "alice", ALICE_PW)
    assert without_base is not None and without_base.groups == ["stewards"]


def test_empty_input_is_refused_before_any_connection() -> None:
    # Nothing listens there: reaching the network at all would raise DirectoryUnavailable.
    nowhere = LdapSettings(url=f"ldap://127.0.0.1:{free_port()}", bind_dn=f"uid={{username}},{PEOPLE}", timeout=1)
    for username, password in [("alice", ""), ("", "pw"), ("   ", "pw"), ("al\x00ice", "pw"), ("a" * 300, "pw")]:
        assert check_password(nowhere, username, password) is None, (username, password)
    with pytest.raises(DirectoryUnavailable, match="Connection refused|LDAPSocketOpenError"):
        check_password(nowhere, "alice", "pw")


def test_a_filter_matching_several_entries_signs_in_nobody(slapd, caplog) -> None:
    loose = _search_settings(slapd, search_filter="(|(uid={username})(objectClass=inetOrgPerson))")
    with caplog.at_level(logging.WARNING, logger="fablab.services.ldap_login"):
        assert check_password(loose, "alice", ALICE_PW) is None
    assert "several entries" in caplog.text


def test_anonymous_search_that_may_read_nothing_signs_in_nobody(slapd) -> None:
    # The seeded ACL lets anonymous clients read nothing, so the search finds no one: a refusal, not an error.
    anonymous = _search_settings(slapd, service_dn="", service_password="")
    assert check_password(anonymous, "alice", ALICE_PW) is None


def test_settings_from_the_app_config() -> None:
    assert LdapSettings.from_config({"FABLAB_LDAP_URL": ""}) is None
    s = LdapSettings.from_config({"FABLAB_LDAP_URL": " ldaps://dc1.lab.example ", "FABLAB_LDAP_SEARCH_BASE": "dc=x",
                                  "FABLAB_LDAP_TIMEOUT": 0, "FABLAB_LDAP_NEW_MEMBERS": "Link"})
    assert s is not None and s.url == "ldaps://dc1.lab.example" and s.uses_tls
    assert s.timeout == 1 and s.new_members == "link" and s.search_filter == ldap_login.DEFAULT_FILTER
    assert s.problems() == []
    bad = LdapSettings(url="http://x", bind_dn="uid=fixed,dc=x", cafile="/nonexistent/ca.pem",
                       new_members="sometimes", role_map="chief=admins")
    problems = " | ".join(bad.problems())
    for expected in ("FABLAB_LDAP_URL", "has no {username}", "FABLAB_LDAP_CAFILE", "FABLAB_LDAP_NEW_MEMBERS",
                     "FABLAB_LDAP_ROLE_MAP"):
        assert expected in problems
    assert "set FABLAB_LDAP_BIND_DN" in " ".join(LdapSettings(url="ldap://x").problems())
    assert "FABLAB_LDAP_SEARCH_FILTER" in " ".join(
        LdapSettings(url="ldap://x", search_base="dc=x", search_filter="(uid=alice)").problems())

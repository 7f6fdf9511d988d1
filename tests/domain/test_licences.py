import pytest

from fablab.domain.licences import (
    LicenceError,
    LicenceKind,
    allowed_fork_licences,
    check_fork_licence,
    check_licence,
    open_licences,
)

REQUIRED = ["CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "CERN-OHL-P-2.0", "CERN-OHL-W-2.0", "CERN-OHL-S-2.0",
            "GPL-2.0-or-later", "GPL-3.0-or-later", "LGPL-3.0-or-later", "AGPL-3.0-or-later", "MIT",
            "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "MPL-2.0", "TAPR-OHL-1.0"]


@pytest.mark.parametrize("spdx", REQUIRED)
def test_open_licences_are_accepted_with_their_facts(spdx):
    lic = check_licence(spdx)
    assert lic.spdx == spdx
    assert lic.url.startswith("https://")
    assert lic.name


def test_kinds_and_attribution():
    assert check_licence("CC0-1.0").kind is LicenceKind.PUBLIC_DOMAIN
    assert not check_licence("CC0-1.0").attribution_required
    assert check_licence("CC-BY-4.0").kind is LicenceKind.PERMISSIVE
    assert check_licence("CC-BY-4.0").attribution_required
    assert check_licence("CERN-OHL-W-2.0").kind is LicenceKind.WEAK_COPYLEFT
    assert check_licence("CERN-OHL-S-2.0").kind is LicenceKind.STRONG_COPYLEFT
    assert check_licence("GPL-3.0-or-later").copyleft
    assert not check_licence("MIT").copyleft


def test_ids_match_case_insensitively_and_return_canonical_spelling():
    assert check_licence("cc-by-sa-4.0").spdx == "CC-BY-SA-4.0"
    assert check_licence(" mit ").spdx == "MIT"


@pytest.mark.parametrize("spdx", ["CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "cc-by-nc-3.0"])
def test_noncommercial_is_refused_with_the_reason(spdx):
    with pytest.raises(LicenceError) as err:
        check_licence(spdx)
    assert err.value.code == "licence_not_open"
    assert "NonCommercial licences are not open: others could not make and share this design freely" in str(
        err.value
    )


@pytest.mark.parametrize("spdx", ["CC-BY-ND-4.0", "CC-BY-NC-ND-4.0"])
def test_no_derivatives_is_refused(spdx):
    with pytest.raises(LicenceError) as err:
        check_licence(spdx)
    assert err.value.code == "licence_not_open"
    assert "not open" in str(err.value)
    assert "fork" in str(err.value) or "NonCommercial" in str(err.value)


def test_unknown_and_missing_and_proprietary():
    with pytest.raises(LicenceError) as err:
        check_licence("WTFPL-ish")
    assert err.value.code == "licence_unknown"
    assert "CC0-1.0" in str(err.value)  # tells which ones are possible
    with pytest.raises(LicenceError) as err:
        check_licence("")
    assert err.value.code == "licence_missing"
    with pytest.raises(LicenceError) as err:
        check_licence("proprietary")
    assert err.value.code == "licence_not_open"


def test_open_licences_lists_each_once():
    ids = [lic.spdx for lic in open_licences()]
    assert len(ids) == len(set(ids))
    assert set(REQUIRED) <= set(ids)


@pytest.mark.parametrize(
    ("parent", "allowed"),
    [
        ("CC-BY-SA-4.0", {"CC-BY-SA-4.0", "GPL-3.0-or-later"}),
        ("CERN-OHL-S-2.0", {"CERN-OHL-S-2.0"}),
        ("CERN-OHL-W-2.0", {"CERN-OHL-W-2.0", "CERN-OHL-S-2.0"}),
        ("GPL-3.0-or-later", {"GPL-3.0-or-later", "AGPL-3.0-or-later"}),
        ("AGPL-3.0-or-later", {"AGPL-3.0-or-later"}),
    ],
)
def test_copyleft_parents_restrict_forks(parent, allowed):
    got = allowed_fork_licences(parent)
    assert {lic.spdx for lic in got} == allowed
    assert got[0].spdx == parent  # the parent's own licence is offered first


@pytest.mark.parametrize("parent", ["CC0-1.0", "CC-BY-4.0", "MIT", "CERN-OHL-P-2.0", "Apache-2.0"])
def test_permissive_parents_allow_any_open_licence(parent):
    got = {lic.spdx for lic in allowed_fork_licences(parent)}
    assert got == {lic.spdx for lic in open_licences()}
    assert check_fork_licence(parent, "CC-BY-SA-4.0").spdx == "CC-BY-SA-4.0"


def test_sharealike_fork_may_move_one_way_to_gpl3_but_not_back():
    assert check_fork_licence("CC-BY-SA-4.0", "GPL-3.0-or-later").spdx == "GPL-3.0-or-later"
    with pytest.raises(LicenceError) as err:
        check_fork_licence("GPL-3.0-or-later", "CC-BY-SA-4.0")
    assert err.value.code == "fork_licence_incompatible"


def test_incompatible_fork_licence_explains_the_rule():
    with pytest.raises(LicenceError) as err:
        check_fork_licence("CC-BY-SA-4.0", "CC-BY-4.0")
    message = str(err.value)
    assert err.value.code == "fork_licence_incompatible"
    assert "ShareAlike" in message and "CC-BY-4.0 is not allowed" in message
    with pytest.raises(LicenceError) as err:
        check_fork_licence("CERN-OHL-S-2.0", "CERN-OHL-W-2.0")
    assert "strongly reciprocal" in str(err.value)


def test_a_fork_still_cannot_pick_a_closed_licence():
    with pytest.raises(LicenceError) as err:
        check_fork_licence("MIT", "CC-BY-NC-4.0")
    assert err.value.code == "licence_not_open"

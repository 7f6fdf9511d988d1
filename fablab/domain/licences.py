"""Open licences for designs (SPDX ids), and which licences a fork may take.

Designs are commons: a licence that stops others from making, changing or sharing a design is refused,
and a ShareAlike / copyleft parent passes its terms on to every fork.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class LicenceKind(StrEnum):
    PUBLIC_DOMAIN = "public domain"
    PERMISSIVE = "permissive"
    WEAK_COPYLEFT = "weak copyleft"
    STRONG_COPYLEFT = "strong copyleft"


@dataclass(frozen=True)
class Licence:
    spdx: str
    name: str
    url: str
    kind: LicenceKind
    attribution_required: bool

    @property
    def copyleft(self) -> bool:
        return self.kind in (LicenceKind.WEAK_COPYLEFT, LicenceKind.STRONG_COPYLEFT)


class LicenceError(ValueError):
    """A licence was refused; `code` is stable for the API, `str(err)` explains why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_K = LicenceKind
_LIST = [
    Licence("CC0-1.0", "Creative Commons Zero 1.0 (public domain dedication)",
            "https://creativecommons.org/publicdomain/zero/1.0/", _K.PUBLIC_DOMAIN, False),
    Licence("CC-BY-4.0", "Creative Commons Attribution 4.0",
            "https://creativecommons.org/licenses/by/4.0/", _K.PERMISSIVE, True),
    Licence("CC-BY-3.0", "Creative Commons Attribution 3.0 Unported",
            "https://creativecommons.org/licenses/by/3.0/", _K.PERMISSIVE, True),
    Licence("CC-BY-SA-4.0", "Creative Commons Attribution-ShareAlike 4.0",
            "https://creativecommons.org/licenses/by-sa/4.0/", _K.STRONG_COPYLEFT, True),
    Licence("CC-BY-SA-3.0", "Creative Commons Attribution-ShareAlike 3.0 Unported",
            "https://creativecommons.org/licenses/by-sa/3.0/", _K.STRONG_COPYLEFT, True),
    Licence("CERN-OHL-P-2.0", "CERN Open Hardware Licence v2 - Permissive",
            "https://ohwr.org/cern_ohl_p_v2.txt", _K.PERMISSIVE, True),
    Licence("CERN-OHL-W-2.0", "CERN Open Hardware Licence v2 - Weakly Reciprocal",
            "https://ohwr.org/cern_ohl_w_v2.txt", _K.WEAK_COPYLEFT, True),
    Licence("CERN-OHL-S-2.0", "CERN Open Hardware Licence v2 - Strongly Reciprocal",
            "https://ohwr.org/cern_ohl_s_v2.txt", _K.STRONG_COPYLEFT, True),
    Licence("TAPR-OHL-1.0", "TAPR Open Hardware License v1.0",
            "https://tapr.org/the-tapr-open-hardware-license/", _K.STRONG_COPYLEFT, True),
    Licence("GPL-2.0-or-later", "GNU General Public License v2.0 or later",
            "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html", _K.STRONG_COPYLEFT, True),
    Licence("GPL-3.0-or-later", "GNU General Public License v3.0 or later",
            "https://www.gnu.org/licenses/gpl-3.0.html", _K.STRONG_COPYLEFT, True),
    Licence("LGPL-3.0-or-later", "GNU Lesser General Public License v3.0 or later",
            "https://www.gnu.org/licenses/lgpl-3.0.html", _K.WEAK_COPYLEFT, True),
    Licence("AGPL-3.0-or-later", "GNU Affero General Public License v3.0 or later",
            "https://www.gnu.org/licenses/agpl-3.0.html", _K.STRONG_COPYLEFT, True),
    Licence("MPL-2.0", "Mozilla Public License 2.0",
            "https://www.mozilla.org/en-US/MPL/2.0/", _K.WEAK_COPYLEFT, True),
    Licence("MIT", "MIT License", "https://opensource.org/license/mit", _K.PERMISSIVE, True),
    Licence("Apache-2.0", "Apache License 2.0",
            "https://www.apache.org/licenses/LICENSE-2.0", _K.PERMISSIVE, True),
    Licence("BSD-2-Clause", "BSD 2-Clause \"Simplified\" License",
            "https://opensource.org/license/bsd-2-clause", _K.PERMISSIVE, True),
    Licence("BSD-3-Clause", "BSD 3-Clause \"New\" or \"Revised\" License",
            "https://opensource.org/license/bsd-3-clause", _K.PERMISSIVE, True),
    Licence("Unlicense", "The Unlicense", "https://unlicense.org/", _K.PUBLIC_DOMAIN, False),
]
LICENCES: dict[str, Licence] = {lic.spdx: lic for lic in _LIST}
_BY_LOWER = {spdx.lower(): spdx for spdx in LICENCES}

# Known licences (and habits) that are not open, with the reason shown to the author.
_NC = ("NonCommercial licences are not open: others could not make and share this design freely "
       "(a lab, a school or a member selling a copy would break it)")
_ND = ("NoDerivatives licences are not open: nobody could fork, repair or adapt this design, "
       "which is what the commons is for")
_NOT_OPEN = {
    "proprietary": "A proprietary licence keeps the design closed; designs here are commons",
    "all-rights-reserved": "'All rights reserved' keeps the design closed; designs here are commons",
    "none": "Without a licence nobody may legally copy or change the design; choose an open licence",
    "GPL-2.0-only": "GPL-2.0-only cannot be combined with most other copyleft licences; "
                    "use GPL-2.0-or-later or GPL-3.0-or-later",
}

# Copyleft parents: which licences a fork may take (the parent's own first), and why.
_FORK_RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "CC-BY-SA-4.0": (("CC-BY-SA-4.0", "GPL-3.0-or-later"),
                     "CC-BY-SA-4.0 is ShareAlike: adaptations must stay CC-BY-SA-4.0, or use "
                     "GPL-3.0-or-later, which Creative Commons declared compatible (one way only)"),
    "CC-BY-SA-3.0": (("CC-BY-SA-3.0", "CC-BY-SA-4.0"),
                     "CC-BY-SA-3.0 is ShareAlike: adaptations must use CC-BY-SA-3.0 or a later version"),
    "CERN-OHL-S-2.0": (("CERN-OHL-S-2.0",),
                       "CERN-OHL-S-2.0 is strongly reciprocal: modified designs must stay CERN-OHL-S-2.0"),
    "CERN-OHL-W-2.0": (("CERN-OHL-W-2.0", "CERN-OHL-S-2.0"),
                       "CERN-OHL-W-2.0 is weakly reciprocal: modified designs must stay CERN-OHL-W-2.0 "
                       "or move to the stronger CERN-OHL-S-2.0"),
    "TAPR-OHL-1.0": (("TAPR-OHL-1.0",),
                     "TAPR-OHL-1.0 is reciprocal: modified designs must stay TAPR-OHL-1.0"),
    "GPL-2.0-or-later": (("GPL-2.0-or-later", "GPL-3.0-or-later", "AGPL-3.0-or-later"),
                         "GPL-2.0-or-later is copyleft: modified designs must stay under the GPL "
                         "(version 2 or later, or 3 or later, or the AGPL-3.0 which the GPL-3.0 allows)"),
    "GPL-3.0-or-later": (("GPL-3.0-or-later", "AGPL-3.0-or-later"),
                         "GPL-3.0-or-later is copyleft: modified designs must stay GPL-3.0-or-later "
                         "(or AGPL-3.0-or-later, which GPL-3.0 section 13 allows)"),
    "AGPL-3.0-or-later": (("AGPL-3.0-or-later",),
                          "AGPL-3.0-or-later is copyleft: modified designs must stay AGPL-3.0-or-later"),
    "LGPL-3.0-or-later": (("LGPL-3.0-or-later", "GPL-3.0-or-later", "AGPL-3.0-or-later"),
                          "LGPL-3.0-or-later is copyleft for changes: modified designs must stay "
                          "LGPL-3.0-or-later or move to GPL-3.0-or-later / AGPL-3.0-or-later"),
    "MPL-2.0": (("MPL-2.0", "GPL-2.0-or-later", "GPL-3.0-or-later", "LGPL-3.0-or-later", "AGPL-3.0-or-later"),
                "MPL-2.0 is file-level copyleft: modified files must stay MPL-2.0, or be combined under one "
                "of its 'Secondary Licenses' (GPL-2.0-or-later, LGPL, AGPL)"),
}


def open_licences() -> list[Licence]:
    """All licences a design may take, in a stable order for a select box."""
    return list(_LIST)


def check_licence(spdx: str) -> Licence:
    """The open licence for an SPDX id (case-insensitive), or LicenceError saying why it is refused."""
    ident = (spdx or "").strip()
    if not ident:
        raise LicenceError("licence_missing", "Choose an open licence for the design")
    canonical = _BY_LOWER.get(ident.lower())
    if canonical is not None:
        return LICENCES[canonical]
    upper = ident.upper()
    if re.search(r"(^|-)NC(-|$)", upper):
        raise LicenceError("licence_not_open", f"{ident}: {_NC}")
    if re.search(r"(^|-)ND(-|$)", upper):
        raise LicenceError("licence_not_open", f"{ident}: {_ND}")
    for key, reason in _NOT_OPEN.items():
        if key.lower() == ident.lower():
            raise LicenceError("licence_not_open", f"{ident}: {reason}")
    raise LicenceError(
        "licence_unknown",
        f"{ident!r} is not an open licence this lab knows; choose one of: {', '.join(LICENCES)}",
    )


def allowed_fork_licences(parent_spdx: str) -> list[Licence]:
    """Licences a fork of a design under `parent_spdx` may take (the parent's own licence first)."""
    parent = check_licence(parent_spdx)
    rule = _FORK_RULES.get(parent.spdx)
    if rule is None:  # public domain and permissive parents: any open licence (attribution is kept anyway)
        return [parent] + [lic for lic in _LIST if lic.spdx != parent.spdx]
    return [LICENCES[s] for s in rule[0]]


def check_fork_licence(parent_spdx: str, child_spdx: str) -> Licence:
    """The child's licence if a fork of `parent_spdx` may use it, else LicenceError explaining the rule."""
    child = check_licence(child_spdx)
    allowed = allowed_fork_licences(parent_spdx)
    if child in allowed:
        return child
    parent = check_licence(parent_spdx)
    reason = _FORK_RULES[parent.spdx][1]
    raise LicenceError(
        "fork_licence_incompatible",
        f"This design is a fork of a {parent.spdx} design. {reason}; {child.spdx} is not allowed.",
    )

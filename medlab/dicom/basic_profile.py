"""The Basic Profile of DICOM PS3.15 Annex E, Table E.1-1: what to do with each attribute.

Table E.1-1 ("Application Level Confidentiality Profile Attributes") lists every standard
attribute that may identify a patient, a person or an institution, with an action in its
*Basic Profile* column. MedLab does not copy the table: it reads the lists of the
`dicom-anonymizer <https://github.com/KitwareMedical/dicom-anonymizer>`_ package (Kitware),
which that project generates from the standard's published table, in the edition
:data:`EDITION` (module ``dicomanonymizer.dicom_anonymization_databases.dicomfields_2026c``).
``tests/test_dicom_deidentify.py`` checks the result against those lists (and that the
library's previous edition, 2024b, lost no attribute) and against rows of the standard.

:data:`BASIC_PROFILE` maps each attribute (its pydicom keyword, or ``"(gggg,eeee)"`` for
attributes newer than pydicom's dictionary, or a pattern such as ``"(60xx,3000)"``) to its
action code (:data:`ACTIONS`); :func:`profile_action` looks a tag up. Where the table offers
a choice, :data:`APPLIED` says which option :func:`medlab.dicom.deidentify` takes.

>>> BASIC_PROFILE["PatientName"], BASIC_PROFILE["PatientID"], BASIC_PROFILE["InstitutionName"]
('Z', 'Z/D', 'X/Z/D')
>>> profile_action(0x60023000), APPLIED["X/Z/U*"]  # Overlay Data of overlay group 6002
('X', 'U')
"""

from __future__ import annotations

from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
from pydicom.datadict import keyword_for_tag

EDITION = "2026c"
"""The edition of DICOM PS3.15 whose Table E.1-1 :data:`BASIC_PROFILE` holds."""

ACTIONS: dict[str, str] = {
    "D": "replace with a non-zero length value that may be a dummy, consistent with the VR",
    "Z": "replace with a zero length value, or a dummy value consistent with the VR",
    "X": "remove",
    "U": "replace with a UID that is consistent within the set of instances",
    "Z/D": "Z unless D is required to keep the IOD conformant (Type 2 versus Type 1)",
    "X/Z": "X unless Z is required to keep the IOD conformant (Type 3 versus Type 2)",
    "X/D": "X unless D is required to keep the IOD conformant (Type 3 versus Type 1)",
    "X/Z/D": "X unless Z or D is required to keep the IOD conformant",
    "X/Z/U*": "X unless Z, or U for the UIDs the sequence contains, is required to keep the IOD conformant",
}
"""The action codes of the Basic Profile column of Table E.1-1 and what they mean."""

APPLIED: dict[str, str] = {
    "D": "D",
    "Z": "Z",
    "X": "X",
    "U": "U",
    "Z/D": "D",  # a dummy keeps Type 1 attributes valid and says nothing
    "X/Z": "X",
    "X/D": "X",
    "X/Z/D": "X",
    "X/Z/U*": "U",  # keep the references, replace the UIDs inside them
}
"""The option :func:`medlab.dicom.deidentify` takes for each code: the removal where the
table allows it (without knowing the IOD, removing reveals least); a dummy for ``Z/D``;
for ``X/Z/U*`` the sequence stays and the UIDs in it are replaced."""

_LISTS = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}
PRIVATE = "(gggg,eeee) where gggg is odd"
"""The key of the table's row for private attributes (action ``X``)."""


def _pattern_text(value: int, mask: int) -> str:
    """``"(60xx,3000)"`` for the tags ``t`` with ``t & mask == value``."""
    digits = "".join(
        f"{value:08X}"[i] if f"{mask:08X}"[i] == "F" else "x" for i in range(8)
    )
    return f"({digits[:4]},{digits[4:]})"


def _load() -> tuple[dict[int, str], list[tuple[int, int, str, str]]]:
    """Tag -> action, and (tag, mask, pattern text, action) for the rows with ``xx``."""
    lists = dicom_anonymization_database_selector(f"dicomfields_{EDITION}")
    tags: dict[int, str] = {}
    patterns: list[tuple[int, int, str, str]] = []
    for name, action in _LISTS.items():
        for entry in lists[name]:
            if len(entry) == 4:  # (group, element, group mask, element mask)
                group, element, group_mask, element_mask = entry
                value, mask = group << 16 | element, group_mask << 16 | element_mask
                patterns.append((value, mask, _pattern_text(value, mask), action))
            else:
                group, element = entry
                tags[group << 16 | element] = action
    return tags, patterns


_BY_TAG, _PATTERNS = _load()

BASIC_PROFILE: dict[str, str] = {
    **{
        keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})": action
        for tag, action in sorted(_BY_TAG.items())
    },
    **{text: action for _, _, text, action in _PATTERNS},
    PRIVATE: "X",
}
"""Table E.1-1, Basic Profile column, edition :data:`EDITION`: attribute -> action code."""


def profile_action(tag: int) -> str | None:
    """The Basic Profile action code for ``tag`` (e.g. ``0x00100010``), or ``None`` if the
    table does not list it (the attribute is kept). Private tags (odd group) give ``"X"``."""
    if tag in _BY_TAG:
        return _BY_TAG[tag]
    if (tag >> 16) % 2:
        return "X"
    for value, mask, _, action in _PATTERNS:
        if tag & mask == value:
            return action
    return None

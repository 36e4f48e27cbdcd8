"""Object UIDs are random version-4 UUIDs in the usual text form, never repeated."""

from __future__ import annotations

import uuid

from skiff.apiserver.writes import new_uid


def test_text_form_version_and_variant() -> None:
    uids = [new_uid() for _ in range(500)]
    assert len(set(uids)) == len(uids)
    for text in uids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower-case hex, dashes at 8-4-4-4-12
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122

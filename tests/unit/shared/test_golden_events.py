"""The wire format of every event type is pinned by a file of its stream fields.

``tests/fixtures/events/<type>.v<version>.json`` holds one entry exactly as it lies in Redis.
Each file must decode, and encode back to the same fields (the MAC of sealed types included):
a renamed, removed, retyped or added field, or a change of the seal, fails here before it
reaches a stream that older entries or other replicas still use. A new ``VERSION`` of a payload
needs a new file beside the old one; the old one keeps proving that its entries still decode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import signing
from shared.codec import decode, encode
from shared.events import PAYLOAD_TYPES, Payload

FOLDER = Path(__file__).resolve().parents[2] / "fixtures" / "events"
# The key the sealed files were made with (a test key, no deployment's).
GOLDEN_KEY = b"golden-event-files-signing-key-0123456789abcdef"
FILES = sorted(FOLDER.glob("*.json"))


def _name(payload: type[Payload]) -> str:
    return f"{payload.TYPE}.v{payload.VERSION}.json"


@pytest.fixture
def golden_key() -> Iterator[None]:
    previous = signing.installed_key()
    signing.install(GOLDEN_KEY)
    yield
    signing.install(previous)


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_a_golden_entry_decodes_and_encodes_to_the_same_fields(path: Path, golden_key: None) -> None:
    fields = json.loads(path.read_text())
    event = decode(fields)
    assert path.name == f"{event.type}.v{event.version}.json"
    assert encode(event) == fields
    if fields["type"] in signing.SEALED_TYPES:
        assert signing.check_fields(fields, GOLDEN_KEY) is signing.Seal.VALID


def test_every_payload_type_and_version_has_a_golden_file() -> None:
    missing = sorted(_name(payload) for payload in PAYLOAD_TYPES.values() if not (FOLDER / _name(payload)).is_file())
    assert not missing, f"no golden entry for {', '.join(missing)} in {FOLDER}"


def test_every_payload_class_with_a_type_is_registered() -> None:
    def subclasses(cls: type[Payload]) -> Iterator[type[Payload]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    typed = {cls for cls in subclasses(Payload) if cls.TYPE and cls.__module__.startswith("shared.events")}
    assert typed == set(PAYLOAD_TYPES.values())

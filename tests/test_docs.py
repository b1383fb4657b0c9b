"""The user-facing documents name only files that exist (README once sent users to a script
that never did)."""

from __future__ import annotations

import re

import pytest

from conftest import REPO

# `tools/x.py`, `models/...`, and package-relative names such as `engines/piper.py`.
_PATH = re.compile(r"`((?:tools|tests|benchmarks|docs|models|rootfs|wyoming_indextts|engines|frontend|server)/[^`\s*]+)`")


@pytest.mark.parametrize("document", ["README.md", "DOCS.md"])
def test_every_file_a_document_names_exists(document: str) -> None:
    named = set(_PATH.findall((REPO / document).read_text(encoding="utf-8")))
    assert named or document != "README.md"  # the pattern still finds what README names
    missing = sorted(p for p in named if not (REPO / p).exists() and not (REPO / "wyoming_indextts" / p).exists())
    assert not missing, f"{document} names files that do not exist: {missing}"

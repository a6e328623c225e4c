"""The Results page's archive table as a reader reads it: docs/.partials/results.md over the page's facts."""

from __future__ import annotations

from gpucnn.templating import environment
from tests.conftest import ROOT


def words():
    return environment(ROOT / "docs").get_template(".partials/results.md").module


def archive_words() -> str:
    from gpucnn.pages import results

    return str(words().archive(results.archive_records()))

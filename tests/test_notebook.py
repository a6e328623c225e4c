"""The notebook page (docs/training.py): executed in the site build, and a failing cell fails it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucnn.pages.common import accelerator
from tests.conftest import ROOT, build_site

pytestmark = pytest.mark.site


class _Loader(yaml.SafeLoader):
    """mkdocs.yml has !!python/name tags; this test needs only the plugin options."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def jupyter_options() -> dict[str, Any]:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocs-jupyter" in plugin:
            return plugin["mkdocs-jupyter"]
    raise AssertionError("mkdocs.yml does not configure mkdocs-jupyter")


def test_the_plugin_is_configured_to_fail_loudly_and_stay_offline() -> None:
    opts = jupyter_options()
    assert opts["execute"] is True
    assert opts["allow_errors"] is False, "the default (true) renders a failing cell and passes the build"
    # Its cache keys on the notebook bytes only: off here, and turned on by the
    # gpucnn hook only with a folder keyed on code, hardware, torch and profile.
    assert opts["cache"] is False
    assert opts["include"] == ["docs/training.py"], "no other .py under docs/ may become a page"
    assert opts["include_source"] is True
    assert not str(opts.get("custom_mathjax_url", "")).startswith("http")


def test_the_training_page_is_executed_with_its_outputs(built_site: Path) -> None:
    page = built_site / "training" / "index.html"
    html = page.read_text()
    assert "Train, store and deploy a CNN" in html
    # executed: outputs of the cells are there, charts are PNGs with alt text
    assert "Test accuracy" in html and "Time per epoch" in html
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', html)) >= 4
    assert "Batch-1 latency" in html and "Same predictions" in html
    assert "yes/yes" in html, "reloaded and exported models must predict like the original"
    # no cell raised, and none wrote to stderr (a warning would show there)
    assert "Traceback" not in html
    assert not re.search(r'<div[^>]*data-mime-type="application/vnd\.jupyter\.stderr"', html)
    # the download link points at the copied source
    assert 'href="training.py"' in html
    assert (built_site / "training" / "training.py").read_text() == (ROOT / "docs" / "training.py").read_text()
    if accelerator() is None:
        assert "No GPU in this build" in html
        assert "torch.compile on the CPU" in html


def test_the_fixed_seed_run_meets_the_target_in_the_build(built_site: Path) -> None:
    doc = json.loads((built_site / "results.json").read_text())
    runs = {r["experiment"]: r for r in doc["results"]}
    assert {"digits_training", "training_throughput"} <= set(runs), "the notebook's results must reach results.json"
    assert runs["digits_training"]["data"]["test_accuracy"] >= 0.97
    assert runs["digits_training"]["profile"] == "quick"


def test_the_notebook_page_makes_no_request_off_the_site(built_site: Path) -> None:
    from gpucnn.site_guard import offsite_urls_in_html

    html = (built_site / "training" / "index.html").read_text()
    assert offsite_urls_in_html(html, "gpucnn.github.io") == []
    # nbconvert's template would load MathJax and mermaid from cdnjs; the hook removes both
    assert "cdnjs" not in html and "<!-- Load mathjax -->" not in html
    assert not re.search(r'import\(["\']https?:', html)


def test_a_failing_cell_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n")
    (docs / "broken.py").write_text(
        "# %% [markdown]\n# # Broken\n\n# %%\nraise RuntimeError('cell failed on purpose')\n")
    opts = {**jupyter_options(), "include": ["docs/broken.py"]}
    config = {"site_name": "broken", "strict": True, "nav": ["index.md", "broken.py"],
              "plugins": [{"mkdocs-jupyter": opts}]}
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    proc = build_site(tmp_path / "site", tmp_path / "cache", config=tmp_path / "mkdocs.yml")
    assert proc.returncode != 0
    assert "cell failed on purpose" in proc.stdout + proc.stderr
    assert not (tmp_path / "site" / "broken" / "index.html").exists()


class _Plugin:
    def __init__(self) -> None:
        self.config: dict[str, Any] = {"cache": False, "cache_dir": ".cache/mkdocs-jupyter"}


def test_the_notebook_cache_is_keyed_on_profile_and_turned_off_by_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    # mkdocs-jupyter keys its cache on the notebook's bytes only: the hook gives
    # each profile / machine / code version its own cache folder.
    import tempfile

    from gpucnn import mkdocs_hooks
    from gpucnn.results import SHARE_ENV

    monkeypatch.setenv(SHARE_ENV, tempfile.mkdtemp())
    folders = {}
    for profile in ("quick", "full"):
        plugin = _Plugin()
        mkdocs_hooks._key_notebook_cache({"plugins": {"mkdocs-jupyter": plugin}}, profile)
        assert plugin.config["cache"] is True
        folders[profile] = plugin.config["cache_dir"]
    assert folders["quick"] != folders["full"]

    monkeypatch.setenv("GPUCNN_FRESH", "1")
    plugin = _Plugin()
    mkdocs_hooks._key_notebook_cache({"plugins": {"mkdocs-jupyter": plugin}}, "quick")
    assert plugin.config["cache"] is False

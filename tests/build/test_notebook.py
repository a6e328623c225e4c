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
    # executed: outputs of the cells are there
    assert "Test accuracy" in html and "Time per epoch" in html
    # charts are inline SVG like every other page's, whose ink follows the palette (currentColor), each with
    # a title and its series marked with their source; no PNG with its own white background
    charts = re.findall(r'<figure class="gpucnn-chart"><svg [^>]*role="img"[^>]*>.*?</figure>', html, flags=re.S)
    assert len(charts) >= 4
    for chart in charts:
        assert "currentColor" in chart and "<title" in chart and 'data-source="live"' in chart
    assert not re.search(r'<img[^>]*src="data:image/png', html)  # (the notebook CSS has PNG backgrounds)
    # the training loop is in a cell (its source is highlighted: compare the text), and its epochs are printed
    text = re.sub(r"<[^>]+>", "", html)
    assert "loss.backward()" in text and "optimizer.step()" in text and "for epoch in range" in text
    assert re.search(r"epoch 5: training loss \d+\.\d{3}, validation loss \d+\.\d{3}, validation accuracy "
                     r"\d+\.\d %", html)
    # the speedups together, and a finding per source, marked with the source
    assert "channels_last + bf16 autocast" in html
    assert '<li data-source="live"><strong>CPU (this build)</strong>' in html
    assert "Batch-1 latency" in html and "Same predictions" in html
    assert "yes/yes" in html, "reloaded and exported models must predict like the original"
    # no cell raised, and none wrote to stderr (a warning would show there)
    assert "Traceback" not in html
    assert not re.search(r'<div[^>]*data-mime-type="application/vnd\.jupyter\.stderr"', html)
    # each section's sources line is shown, but not the plumbing cell that prints it (tagged hide-input)
    assert text.count("Sources:") >= 3 and "display(HTML(section_sources()))" not in text
    # the download link points at the copied source
    assert 'href="training.py"' in html
    assert (built_site / "training" / "training.py").read_text() == (ROOT / "docs" / "training.py").read_text()
    if accelerator() is None:
        assert "No GPU in this build" in html
        assert "torch.compile is not measured on the CPU" in html
        assert "TF32 does not exist on the CPU" in html


def test_the_fixed_seed_run_meets_the_target_in_the_build(built_site: Path) -> None:
    doc = json.loads((built_site / "results.json").read_text())
    runs = {r["experiment"]: r for r in doc["results"]}
    assert {"digits_training", "training_throughput", "training_combined"} <= set(runs), \
        "the notebook's results must reach results.json"
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

    from gpucnn.build.notebook import NotebookCache
    from gpucnn.results import SHARE_ENV

    monkeypatch.setenv(SHARE_ENV, tempfile.mkdtemp())
    folders = {}
    for profile in ("quick", "full"):
        plugin = _Plugin()
        cache = NotebookCache.keyed({"plugins": {"mkdocs-jupyter": plugin}}, profile, "archive")
        assert plugin.config["cache"] is True and cache is not None
        cache.discard()
        folders[profile] = plugin.config["cache_dir"]
    assert folders["quick"] != folders["full"]

    monkeypatch.setenv("GPUCNN_FRESH", "1")
    plugin = _Plugin()
    assert NotebookCache.keyed({"plugins": {"mkdocs-jupyter": plugin}}, "quick", "archive") is None
    assert plugin.config["cache"] is False


def _keyed(monkeypatch: pytest.MonkeyPatch, cache: Path) -> tuple[_Plugin, Path, Any]:
    """Run the build's notebook-cache setup with ``cache`` as GPUCNN_CACHE_DIR: (plugin, keyed folder, the
    build's NotebookCache or None)."""
    import tempfile

    from gpucnn.build.config import archive_digest
    from gpucnn.build.notebook import NotebookCache
    from gpucnn.results import SHARE_ENV

    monkeypatch.setenv("GPUCNN_CACHE_DIR", str(cache))
    monkeypatch.setenv(SHARE_ENV, tempfile.mkdtemp())
    plugin = _Plugin()
    keyed = NotebookCache.keyed({"plugins": {"mkdocs-jupyter": plugin}}, "quick", archive_digest())
    return plugin, keyed.folder if keyed else cache, keyed


def test_an_unreadable_notebook_cache_entry_is_dropped_and_a_good_one_kept(tmp_path: Path, monkeypatch) -> None:
    _, folder, cache = _keyed(monkeypatch, tmp_path / "cache")
    cache.commit()
    (folder / "half.json").write_text('{"content": "<div>cut off by kill -9')
    (folder / "good.json").write_text(json.dumps({"content": "<p>page</p>", "toc_tokens": [], "title": "T"}))
    plugin, again, cache = _keyed(monkeypatch, tmp_path / "cache")
    assert again == folder
    work = Path(plugin.config["cache_dir"])
    assert sorted(p.name for p in work.glob("*.json")) == ["good.json"]
    assert not (folder / "half.json").exists()
    cache.commit()
    assert not work.exists()


def test_notebook_cache_entries_are_put_back_only_by_a_finished_build(tmp_path: Path, monkeypatch) -> None:
    from gpucnn.build.state import Build, build_error

    plugin, folder, cache = _keyed(monkeypatch, tmp_path / "cache")
    work = Path(plugin.config["cache_dir"])
    entry = json.dumps({"content": "<p>new</p>", "toc_tokens": [], "title": None})
    (work / "new.json").write_text(entry)          # what mkdocs-jupyter writes during the build
    build = Build()
    build.notebook = cache
    build_error(build)
    assert not (folder / "new.json").exists() and not work.exists()

    plugin, folder, cache = _keyed(monkeypatch, tmp_path / "cache")
    work = Path(plugin.config["cache_dir"])
    (work / "new.json").write_text(entry)
    (work / "torn.json").write_text('{"content": ')  # a write cut short inside this build
    cache.commit()
    assert (folder / "new.json").read_text() == entry
    assert not (folder / "torn.json").exists()


def test_an_unwritable_notebook_cache_folder_costs_speed_not_the_build(monkeypatch) -> None:
    plugin, _, _ = _keyed(monkeypatch, Path("/proc/nope"))
    assert plugin.config["cache"] is False


def test_a_new_archived_record_changes_the_notebook_cache_key(tmp_path: Path, monkeypatch) -> None:
    archive = tmp_path / "results"
    archive.mkdir()
    monkeypatch.setenv("GPUCNN_RESULTS_DIR", str(archive))
    _, before, cache = _keyed(monkeypatch, tmp_path / "cache")
    cache.commit()
    # a valid record: the digest is taken of checked records (a broken file fails the build instead)
    real = sorted((Path(__file__).resolve().parents[2] / "results").glob("nvidia-h100-*.json"))[0]
    (archive / real.name).write_bytes(real.read_bytes())
    _, after, cache = _keyed(monkeypatch, tmp_path / "cache")
    cache.commit()
    assert before != after


def test_stale_shared_folders_of_dead_builds_are_removed(tmp_path: Path, monkeypatch) -> None:
    import os
    import tempfile

    from gpucnn.build.notebook import share_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / "gpucnn-shared-999999999-abc"   # above any pid_max: no such process
    live = tmp_path / f"gpucnn-shared-{os.getpid()}-def"
    dead.mkdir()
    live.mkdir()
    new = Path(share_folder())
    assert not dead.exists() and live.exists()
    assert new.parent == tmp_path and new.name.startswith(f"gpucnn-shared-{os.getpid()}-")


def test_serve_watches_the_archive(tmp_path: Path, monkeypatch) -> None:
    from types import SimpleNamespace

    from gpucnn import mkdocs_hooks

    monkeypatch.setenv("GPUCNN_RESULTS_DIR", str(tmp_path))
    watched: list[str] = []
    mkdocs_hooks.on_serve(SimpleNamespace(watch=watched.append), config=None, builder=None)
    assert watched == [str(tmp_path)]


def _notebook_site(tmp_path: Path, cells: str = "# %%\nprint('cell ran')\n") -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n")
    (docs / "nb.py").write_text("# %% [markdown]\n# # Notebook\n\n" + cells)
    opts = {**jupyter_options(), "include": ["docs/nb.py"]}
    config = {"site_name": "nb", "site_url": "https://gpucnn.github.io/gpucnn/", "strict": True,
              "theme": {"name": "material", "font": False}, "nav": ["index.md", "nb.py"],
              "hooks": [str(ROOT / "gpucnn" / "mkdocs_hooks.py")], "plugins": [{"mkdocs-jupyter": opts}]}
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    return tmp_path / "mkdocs.yml"


def test_a_torn_notebook_cache_entry_heals_in_the_next_build(tmp_path: Path) -> None:
    config = _notebook_site(tmp_path)
    cache = tmp_path / "cache"
    first = build_site(tmp_path / "site", cache, config=config)
    assert first.returncode == 0, first.stderr[-3000:]
    entries = list((cache / "notebook").glob("*/*.json"))
    assert len(entries) == 1 and not list((cache / "notebook").glob("*/.build-*"))
    entries[0].write_text(entries[0].read_text()[:100])  # what a kill -9 or a full disk leaves
    second = build_site(tmp_path / "site", cache, config=config)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "unreadable: removed, the notebook runs again" in second.stderr
    assert "cell ran" in (tmp_path / "site" / "nb" / "index.html").read_text()
    assert json.loads(entries[0].read_text())["content"]


def test_a_notebook_build_with_an_unwritable_cache_folder_passes(tmp_path: Path) -> None:
    config = _notebook_site(tmp_path)
    proc = build_site(tmp_path / "site", Path("/proc/nope"), config=config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cell ran" in (tmp_path / "site" / "nb" / "index.html").read_text()


def test_a_cell_writing_to_stderr_fails_the_build_naming_page_and_cell(tmp_path: Path) -> None:
    config = _notebook_site(tmp_path, "# %%\nprint('fine')\n\n# %%\nimport sys\nprint('a warning', file=sys.stderr)\n")
    proc = build_site(tmp_path / "site", tmp_path / "cache", config=config)
    assert proc.returncode != 0
    assert "page nb.py: these cells wrote to stderr" in proc.stderr
    assert "code cell 2: import sys" in proc.stderr
    assert not (tmp_path / "site" / "nb" / "index.html").exists()


def test_a_cell_tagged_to_show_its_stderr_passes(tmp_path: Path) -> None:
    config = _notebook_site(tmp_path, '# %% tags=["shows-stderr"]\nimport sys\nprint("shown on purpose", file=sys.stderr)\n')
    proc = build_site(tmp_path / "site", tmp_path / "cache", config=config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "shown on purpose" in (tmp_path / "site" / "nb" / "index.html").read_text()

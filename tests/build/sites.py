"""A two-page site built with mkdocs and the gpucnn hook, shared by the page-cache and fault checks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.conftest import ROOT, build_site

# --- site tier: builds of a small site with the project's hooks --------------------------------------------------

TINY_EXPERIMENT = '''
from dataclasses import dataclass
import torch
from gpucnn.bench import Measurement, measure
from gpucnn.results import experiment
from gpucnn.specs import SPECS, Spec


@dataclass(frozen=True)
class TinyData:
    total: Measurement


SPECS["tiny"] = Spec(__name__, 1, TinyData)


@experiment
def tiny(size: int) -> dict:
    x = torch.ones(size)
    return {"total": measure(lambda: x.sum(), name="sum", device="cpu", shape=(size,))}
'''

PAGE = '''# Home

## Measured here

```python exec="on" session="home"
import tinyexp
from gpucnn.results import run
from gpucnn.render import provenance
with open({counter!r}, "a") as f:
    f.write("ran\\n")
print(provenance(run(tinyexp.tiny, size=3)))
```

--8<-- "snippets/note.md"

See [the other page](other.md#far-section).
'''


def _small_site(tmp_path: Path) -> tuple[Path, Path]:
    """A two-page site whose home page runs a block (counting its runs in a file) and includes a snippet."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "snippets").mkdir()
    (tmp_path / "tinyexp.py").write_text(TINY_EXPERIMENT)
    counter = tmp_path / "runs.txt"
    (tmp_path / "docs" / "index.md").write_text(PAGE.format(counter=str(counter)))
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Far section\n\nText.\n")
    (tmp_path / "snippets" / "note.md").write_text("A note from a snippet.\n")
    (tmp_path / "docs" / ".partials").mkdir()
    (tmp_path / "docs" / ".partials" / "notes.md").write_text("{% macro hi() %}Hi{% endmacro %}\n")
    config = {"site_name": "small", "site_url": "https://gpucnn.github.io/gpucnn/", "strict": True,
              "theme": {"name": "material", "font": False}, "nav": ["index.md", "other.md"],
              "hooks": [str(ROOT / "gpucnn" / "mkdocs_hooks.py")],
              "plugins": [{"markdown-exec": {"languages": ["python"]}}],
              "markdown_extensions": [{"toc": {"permalink": True}}, "pymdownx.superfences",
                                      {"pymdownx.snippets": {"base_path": ["."], "check_paths": True}}],
              "validation": {"anchors": "warn"}}
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    return tmp_path / "mkdocs.yml", counter


def _build(tmp_path: Path, config: Path, *options: str, **env: str) -> subprocess.CompletedProcess[str]:
    return build_site(tmp_path / "site", tmp_path / "cache", config=config, options=list(options),
                      extra_env={"PYTHONPATH": f"{tmp_path}:{ROOT}", **env})


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def _home(tmp_path: Path) -> str:
    return (tmp_path / "site" / "index.html").read_text()

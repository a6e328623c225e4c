"""MkDocs hooks: fresh gpucnn code on every (re)build, site/results.json, and the build's guards.

The guards fail the build on what must never be published: a warning raised
while a page renders, a notebook cell's stderr, an off-site request or a
build-machine path anywhere in the output (``gpucnn.site_guard``). They also
keep a build working from any folder, and its caches and temporary folders
healthy after a kill.

Loaded by path from mkdocs.yml (``hooks:``), so it is not part of the package
import graph and survives the reload it performs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

log = logging.getLogger("mkdocs.plugins.gpucnn")


def _end_render_recorders() -> None:
    """A page that raised never reached on_page_content: put warnings and logging back as they were."""
    while _RENDER_WARNINGS:
        _RENDER_WARNINGS.popitem()[1].__exit__(None, None, None)


def on_build_error(error: Exception, **_: Any) -> None:
    _end_render_recorders()
    # Pages written before the error may hold a traceback with this machine's paths.
    if _BUILD_CONFIG:
        with contextlib.suppress(OSError):
            _remove_unpublishable(_BUILD_CONFIG[0])
    from gpucnn.results import SHARE_ENV

    share = os.environ.pop(SHARE_ENV, "")
    if share:
        shutil.rmtree(share, ignore_errors=True)
    _restore_environment()
    # The notebook cache keeps what it had: this build's entries are not trusted.
    for _, work in _NOTEBOOK_CACHE:
        shutil.rmtree(work, ignore_errors=True)
    _NOTEBOOK_CACHE.clear()


@event_priority(100)
def on_config(config: Any) -> Any:
    """Resolve paths against mkdocs.yml's folder, not the working folder, and name pages in errors."""
    # MkDocs reads SOURCE_DATE_EPOCH itself, late in the build and with a traceback: check it first, in one line,
    # before anything is written (on_config runs before the site folder is cleaned).
    from gpucnn.archive import RecordError, build_time

    try:
        build_time()
    except RecordError as exc:
        raise PluginError(str(exc)) from None
    root = Path(config["config_file_path"]).resolve().parent if config.get("config_file_path") else Path.cwd()
    # pymdownx.snippets reads base_path relative to the working folder, so
    # `mkdocs build -f /elsewhere/mkdocs.yml` would miss every snippet. Before
    # markdown-exec's on_config (priority 100), which saves the extension settings.
    snippets = (config.get("mdx_configs") or {}).get("pymdownx.snippets")
    if snippets is not None:
        base = snippets.get("base_path", ["."])
        snippets["base_path"] = [str(root / b) for b in ([base] if isinstance(base, str) else base)]
    _name_pages_in_markdown_exec_errors()
    return config


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    # A record added to the archive while serving changes the Results page and others.
    from gpucnn.archive import archive_dir

    if archive_dir().is_dir():
        server.watch(str(archive_dir()))
    return server


# The page being rendered, and the snippet files it includes, for error messages.
_RENDERING: dict[str, Any] = {"page": None, "snippets": {}}
_SNIPPET_INCLUDE = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$', re.M)


def _normalized(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


class _NamePage(logging.Filter):
    """markdown-exec's error names only "session ann; n2": add the Markdown page and the snippet file."""

    def filter(self, record: logging.LogRecord) -> bool:
        page = _RENDERING["page"]
        message = record.getMessage()
        head, sep, rest = message.partition("Execution of ")
        if page and sep and len(head) < 40:
            code = _normalized(message)
            files = [name for name, text in _RENDERING["snippets"].items() if text and _normalized(text) in code]
            where = f"page {page}" + (f", snippet {', '.join(files)}" if files else "")
            record.msg, record.args = f"{head}{where}: {sep}{rest}", None
        return True


def _name_pages_in_markdown_exec_errors() -> None:
    # markdown-exec logs through one logger per module (mkdocs.plugins.markdown_exec...), and a
    # logger's filters see only its own records: filter each of them.
    try:
        import markdown_exec  # noqa: F401 - its loggers exist once it is imported
    except ImportError:
        return
    names = [n for n in logging.root.manager.loggerDict if n.startswith("mkdocs.plugins.markdown_exec")]
    for logger in map(logging.getLogger, names):
        if not any(type(f).__name__ == _NamePage.__name__ for f in logger.filters):
            logger.addFilter(_NamePage())


# The config of the build under way, for on_build_error (which is not given it).
_BUILD_CONFIG: list[Any] = []


# Seconds spent in this hook's own set-up (imports, hardware, archive, notebook cache key), for the log.
_SETUP_TIME: list[float] = []


def on_pre_build(config: Any) -> None:
    started = time.perf_counter()
    _end_render_recorders()
    _FAILED_PAGES.clear()  # `mkdocs serve` rebuilds in one process
    _BUILD_CONFIG[:] = [config]
    # `mkdocs serve` keeps one process: without this, an edit to gpucnn would not
    # take effect, and old code's results would be cached under the new code's key.
    for name in [m for m in sys.modules if m == "gpucnn" or m.startswith("gpucnn.")]:
        del sys.modules[name]
    from gpucnn.profile import ProfileError, current_profile

    try:
        profile = current_profile()
    except ProfileError as exc:
        raise PluginError(f"GPUCNN_PROFILE: {exc}") from None
    log.info("gpucnn: building with the %s profile", profile.name)

    # A bad archive file fails the build, naming the file and the problem.
    from gpucnn.archive import RecordError, archive_dir, records

    try:
        archived = records()
    except RecordError as exc:
        raise PluginError(f"results archive: {exc}") from None
    log.info("gpucnn: %d archived record(s) in %s/", len(archived), archive_dir().name)
    _PAGE_TIMES.clear()

    # The notebook page runs in a Jupyter kernel (it inherits this environment):
    # it shares its results through this folder, so results.json lists them too.
    from gpucnn.results import MEASURED_ENV, SHARE_ENV

    os.environ[SHARE_ENV] = _share_folder()
    from gpucnn.build import log_noise
    from gpucnn.hardware import detect

    _RESTORE_ENV[:] = [log_noise.kernel_over_ipc(Path(os.environ[SHARE_ENV]))]
    log_noise.quiet_profiler_without_device(has_accelerator=detect().accelerator is not None)
    os.environ.pop(MEASURED_ENV, None)  # `mkdocs serve`: the previous build's measurements are this one's reuses
    _key_notebook_cache(config, profile.name)
    _key_page_cache(config, profile.name)
    _SETUP_TIME[:] = [time.perf_counter() - started]


# What puts JUPYTER_CONFIG_PATH back after the build (gpucnn.build.log_noise.kernel_over_ipc).
_RESTORE_ENV: list[Any] = []


def _restore_environment() -> None:
    while _RESTORE_ENV:
        _RESTORE_ENV.pop()()


def _owner_gone(folder: Path, prefix: str) -> bool:
    """True when the build that made ``<prefix><pid>-...`` has ended (a killed build never cleans up)."""
    m = re.fullmatch(re.escape(prefix) + r"(\d+)-.*", folder.name)
    if m is None:  # made before folders carried their build's pid
        return time.time() - folder.stat().st_mtime > 3600
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's live process
        return False
    return False


def _share_folder() -> str:
    """A new folder for the notebook's results; those of killed builds are removed first."""
    prefix = "gpucnn-shared-"
    for old in Path(tempfile.gettempdir()).glob(prefix + "*"):
        try:
            if old.is_dir() and _owner_gone(old, prefix):
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-")


# Where the executed notebook's results are kept beside mkdocs-jupyter's cache
# of its page, so that a build that reuses the page still lists them in results.json.
_NOTEBOOK_RESULTS: list[Path] = []
# (keyed cache folder, this build's working copy of it): see _notebook_cache_working_copy.
_NOTEBOOK_CACHE: list[tuple[Path, Path]] = []


def _archive_digest() -> str:
    """A digest of the archived records: a new record must not be hidden behind a cached page.

    Of the records as ``archive.records`` lists and checks them (on_pre_build has read them already, and a bad
    entry has failed the build there): no byte of the folder is read here that the archive's checks did not pass.
    """
    from gpucnn import archive

    return archive.digest(archive.records())


def _readable_entry(path: Path) -> bool:
    import json

    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(entry, dict) and isinstance(entry.get("content"), str) and isinstance(entry.get("toc_tokens"), list)


def _notebook_cache_working_copy(folder: Path) -> Path:
    """A private copy of the cache folder for mkdocs-jupyter to read and write during this build.

    mkdocs-jupyter writes its entry in place: a killed build or a full disk
    leaves half a file, which every later build then fails to read. Here it
    writes into this copy; only a build that finishes puts entries back, each
    by an atomic rename. An unreadable entry is dropped, so the notebook runs again.
    Raises OSError when the folder cannot be written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    prefix = ".build-"
    for old in folder.glob(prefix + "*"):
        if _owner_gone(old, prefix):
            shutil.rmtree(old, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=folder))
    for entry in folder.glob("*.json"):
        if _readable_entry(entry):
            shutil.copy(entry, work / entry.name)
        else:
            log.info("gpucnn: notebook cache entry %s is unreadable: removed, the notebook runs again", entry.name)
            entry.unlink(missing_ok=True)
    return work


def _write_if_changed(path: Path, text: str) -> None:
    """Write a file atomically, unless it already holds ``text``: an unchanged rebuild rewrites (and syncs) nothing."""
    from gpucnn.results import atomic_write_text

    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, ValueError):  # missing or unreadable: written
        pass
    atomic_write_text(path, text)


def _commit_notebook_cache() -> None:
    """Put this build's notebook cache entries in place atomically; drop the ones mkdocs-jupyter evicted."""
    for folder, work in _NOTEBOOK_CACHE:
        try:
            kept = {entry.name for entry in work.glob("*.json") if _readable_entry(entry)}
            for name in kept:
                _write_if_changed(folder / name, (work / name).read_text(encoding="utf-8"))
            for entry in folder.glob("*.json"):
                if entry.name not in kept:
                    entry.unlink(missing_ok=True)
        except OSError as exc:  # a full disk costs the next build its speed, not this build
            log.info("gpucnn: the notebook cache was not updated (%s)", exc)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    _NOTEBOOK_CACHE.clear()


def _key_notebook_cache(config: Any, profile: str) -> None:
    """Make mkdocs-jupyter's cache respect what decides the notebook's output.

    Its cache keys on the notebook's bytes and its own options only: a quick
    build's output, or another machine's, would be served as this build's.
    Giving each (gpucnn code, hardware, torch, profile) its own cache folder
    adds the rest of gpucnn's cache key; GPUCNN_FRESH turns the cache off.
    """
    import hashlib
    import json

    import torch

    from gpucnn.hardware import detect
    from gpucnn.results import SHARE_ENV, cache_dir, code_hash, fresh_requested

    plugin = (config.get("plugins") or {}).get("mkdocs-jupyter")
    _NOTEBOOK_RESULTS.clear()
    _NOTEBOOK_CACHE.clear()
    if plugin is None:
        return
    if fresh_requested():
        plugin.config["cache"] = False
        return
    material = json.dumps([code_hash("gpucnn.pages.training"), detect().fingerprint(), torch.__version__, profile,
                           _archive_digest()])
    folder = cache_dir() / "notebook" / hashlib.sha256(material.encode()).hexdigest()[:16]
    try:
        work = _notebook_cache_working_copy(folder)
    except OSError as exc:
        # An unwritable cache folder costs speed, not the build.
        plugin.config["cache"] = False
        log.info("gpucnn: no notebook cache (%s): the notebook runs in every build", exc)
        return
    plugin.config["cache"] = True
    plugin.config["cache_dir"] = str(work)
    _NOTEBOOK_CACHE.append((folder, work))
    kept = folder / "results"
    _NOTEBOOK_RESULTS.append(kept)
    # If the page is reused, no kernel runs: hand its results to this build.
    # If the kernel does run, it overwrites these with what it used.
    for path in kept.glob("*.json") if kept.is_dir() else []:
        shutil.copy(path, Path(os.environ[SHARE_ENV]) / path.name)


# This build's page cache: the key material its pages share (gpucnn.page_cache.site_material; None: no page
# cache), and whether pages may be served from it (not under GPUCNN_FRESH, where they are rendered and stored).
_PAGE_CACHE: dict[str, Any] = {"site": None, "serve": False}
# Pages served from the page cache in this build, and, for each page rendered, (its key, where its results start
# in gpucnn.results.ASKED): what on_page_content stores.
_SERVED_PAGES: set[str] = set()
_RENDERED_PAGES: dict[str, tuple[str, int]] = {}
# GPUCNN_VERIFY: the stored HTML of each page the cache would have served, which this build renders again.
_VERIFYING: dict[str, str] = {}


def _key_page_cache(config: Any, profile: str) -> None:
    """What every page's cache key shares, for on_page_markdown. Under GPUCNN_FRESH pages are stored, not served."""
    from gpucnn.archive import build_date
    from gpucnn.chart_cache import environment_digest
    from gpucnn.hardware import detect
    from gpucnn.page_cache import site_material
    from gpucnn.results import fresh_requested

    _SERVED_PAGES.clear()
    _RENDERED_PAGES.clear()
    _VERIFYING.clear()
    _PAGE_CACHE.update(site=None, serve=not fresh_requested())
    if not config.get("config_file_path"):
        return
    config_file = Path(config["config_file_path"]).resolve()
    docs_dir = Path(config.get("docs_dir") or config_file.parent / "docs")
    try:
        _PAGE_CACHE["site"] = site_material(
            config_file, directory_urls=bool(config.get("use_directory_urls", True)),
            hardware=detect().to_dict(), charts=environment_digest(), profile=profile, archive=_archive_digest(),
            build_date=build_date().isoformat(), partials=docs_dir / ".partials")
    except OSError as exc:  # what the key is made of cannot be read: every page renders
        log.info("gpucnn: no page cache (%s): every page is rendered", exc)


def _serve_or_note_page(markdown: str, page: Any, files: Any) -> None:
    """Serve a Markdown page from the page cache if its key matches, else note it for storing once it renders."""
    from gpucnn import page_cache, results

    src_uri = page.file.src_uri
    if _PAGE_CACHE["site"] is None or files is None:
        return
    # The included files' text too: the snippets folder is in the site's material, an include from elsewhere is not.
    included = sorted(_RENDERING["snippets"].items())
    key = page_cache.page_key(_PAGE_CACHE["site"] + repr(included), src_uri, markdown, [f.src_uri for f in files])
    cached = page_cache.load(src_uri, key) if _PAGE_CACHE["serve"] else None
    if cached is not None and all(files.get_file_from_path(uri) for uri in cached.links_to_anchors) and all(
            results.reuse_entry(experiment, result_key, digest) for experiment, result_key, digest in cached.results):
        if page_cache.verify_requested():  # rendered, and compared with this copy in on_page_content
            _VERIFYING[src_uri] = cached.content
            log.info("gpucnn: page %s rendered again to check its page-cache copy (%s)", src_uri,
                     page_cache.VERIFY_ENV)
            return
        page.render = _served_render(page, cached)
        _SERVED_PAGES.add(src_uri)
        log.info("gpucnn: page %s served from the page cache", src_uri)
    else:
        _RENDERED_PAGES[src_uri] = (key, len(results.ASKED))


def _served_render(page: Any, cached: Any) -> Any:
    """Stands in for ``page.render``: sets what MkDocs' render sets, from the cache."""
    def render(config: Any, files: Any) -> None:
        from mkdocs.structure.toc import get_toc

        page.content = cached.content
        page.toc = get_toc(cached.toc)
        page._title_from_render = cached.title
        page.present_anchor_ids = set(cached.anchors)
        page.links_to_anchors = {files.get_file_from_path(uri): dict(links)
                                 for uri, links in cached.links_to_anchors.items()}

    return render


def _store_rendered_page(html: str, page: Any, mkdocs_warnings: list[str]) -> None:
    """Store a page that rendered cleanly, with the measurement-cache entries it showed.

    Not a page for which MkDocs logged a warning while rendering it (a broken link): strict mode fails the
    build on it, and it would fail every build; a served page logs nothing. Nor a page rendered without
    MkDocs' record of its links to anchors (a verbose build keeps none), which later builds check.
    """
    from gpucnn import page_cache, results
    from gpucnn.render import as_reused

    noted = _RENDERED_PAGES.pop(page.file.src_uri, None)
    if noted is None or mkdocs_warnings or page.links_to_anchors is None:
        return
    key, first = noted
    shown = []
    for result in results.asked_since(first):
        digest = results.entry_digest(result)
        if digest is None:  # no cache entry to check it against later: not cached
            return
        shown.append([result.experiment, result.key, digest])
    links = page.links_to_anchors
    page_cache.save(page.file.src_uri, page_cache.CachedPage(
        key=key, content=as_reused(html), toc=page_cache.toc_tokens(page.toc),
        title=getattr(page, "_title_from_render", None), anchors=sorted(page.present_anchor_ids or ()),
        links_to_anchors={f.src_uri: dict(v) for f, v in links.items()},
        results=shown))


# nbconvert's page template loads MathJax and mermaid from a CDN. No request
# may leave the site, and the notebook has neither math nor diagrams.
_NOTEBOOK_CDN_SCRIPTS = re.compile(
    r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->"
    r"|<script type=\"module\">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*?</script>",
    re.S,
)


# mkdocs-jupyter 0.27 (what Python >= 3.12 resolves) adds, in its own
# on_post_page, a MathJax loader to every page, with a CDN URL in an escaped
# data- attribute; 0.26 has none. No page here has math for MathJax (gpucnn
# renders it to MathML at build time), so the loader goes. This hook's
# on_post_page runs after every plugin's (lowest priority), wherever a plugin
# puts its own.
_JUPYTER_MATHJAX_LOADER = re.compile(r"<script\b[^>]*\bdata-mkdocs-jupyter-mathjax\b[^>]*>.*?</script>\s*", re.S)


@event_priority(-1000)
def on_post_page(output: str, page: Any, **_: Any) -> str:
    if page.file.src_uri.endswith((".py", ".ipynb")):
        output = _NOTEBOOK_CDN_SCRIPTS.sub("", output)
    return _JUPYTER_MATHJAX_LOADER.sub("", output)


# Seconds each page spent in Markdown rendering (where markdown-exec runs its
# blocks), so that a slow rebuild can be traced to its pages.
_PAGE_TIMES: dict[str, float] = {}
_PAGE_START: dict[str, float] = {}


# mkdocs' own warnings are counted by strict mode. The Jupyter machinery that
# runs the notebook's kernel is not page code and writes nothing onto a page;
# the kernel's own warnings reach the page as stderr, which fails the build there.
_NOT_PAGE_CODE = frozenset({"mkdocs", "traitlets", "jupyter_client", "jupyter_core", "nbclient", "nbconvert",
                            "ipykernel", "zmq", "tornado"})


class _WarningsDuringRender:
    """Records the Python warnings and library log warnings raised while one page renders.

    markdown-exec captures only a block's print: a warning from a block or
    from gpucnn's page code goes to the build log, and the page then silently
    shows a figure made under it. Recording them lets the build fail, naming
    the page. mkdocs' own warnings are left to strict mode; they are kept in
    ``mkdocs_warnings``, and keep the page out of the page cache.
    """

    class _Handler(logging.Handler):
        def __init__(self, records: list[str], mkdocs_records: list[str]) -> None:
            super().__init__(logging.WARNING)
            self.records = records
            self.mkdocs_records = mkdocs_records
            self.last: logging.LogRecord | None = None

        def emit(self, record: logging.LogRecord) -> None:
            if record is self.last:  # a torch record that propagates reaches this handler twice
                return
            self.last = record
            if record.name.split(".")[0] == "mkdocs":  # MkDocs prints these and strict mode counts them
                self.mkdocs_records.append(record.getMessage())
                return
            if record.name.split(".")[0] in _NOT_PAGE_CODE:
                log.info("gpucnn: %s: %s", record.name, record.getMessage())
            else:
                self.records.append(f"{record.name}: {record.getMessage()}")

    def __init__(self) -> None:
        self.found: list[str] = []
        self.mkdocs_warnings: list[str] = []
        self._catcher = warnings.catch_warnings(record=True)
        self._caught: list[warnings.WarningMessage] = []
        self._handler = self._Handler(self.found, self.mkdocs_warnings)
        # torch's and MkDocs' loggers do not propagate to the root logger: listen on all three.
        self._loggers = [logging.getLogger(), logging.getLogger("torch"), logging.getLogger("mkdocs")]

    def __enter__(self) -> _WarningsDuringRender:
        # The filters in force stay (catch_warnings copies them); only where warnings go changes.
        self._caught = self._catcher.__enter__()
        for logger in self._loggers:
            logger.addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger in self._loggers:
            logger.removeHandler(self._handler)
        self._catcher.__exit__(*exc)
        for w in self._caught:
            where = f"{Path(w.filename).name}:{w.lineno}"
            if _NOT_PAGE_CODE & set(Path(w.filename).parts):
                log.info("gpucnn: %s: %s (%s)", w.category.__name__, w.message, where)
            elif issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
                # A library's deprecation is not on the page, and a newer library
                # must not break a reader's build: logged, as mkdocs itself does.
                log.info("gpucnn: %s: %s (%s)", w.category.__name__, w.message, where)
            else:
                self.found.append(f"{w.category.__name__}: {w.message} ({where})")


_RENDER_WARNINGS: dict[str, _WarningsDuringRender] = {}


def _block_raises() -> list[str]:
    """The python blocks that raised since the list was last cleared, each as its error's last line.

    markdown-exec catches a block's exception, renders the traceback into the page and says so only in a log
    warning, which ``mkdocs build -q`` silences. So this reads its result instead: its python formatter runs each
    block through its module's ``_run_python`` (looked up at each call), which raises ``ExecutionError`` from the
    block's own exception. That function is wrapped once per process, to note the error and raise it on as before;
    the list lives on the wrapper, so that ``mkdocs serve``'s reload of this module finds the same one.
    """
    try:
        from markdown_exec._internal.formatters import python as formatter
        from markdown_exec._internal.formatters.base import ExecutionError
    except ImportError:
        try:
            import markdown_exec  # noqa: F401
        except ImportError:  # no markdown-exec: no python block runs
            return []
        raise PluginError("markdown-exec's python runner moved (a new markdown-exec?): gpucnn could not tell a "
                          "block that raises; update _block_raises in gpucnn/mkdocs_hooks.py") from None
    original = formatter._run_python
    if hasattr(original, "gpucnn_raised"):
        return original.gpucnn_raised
    raised: list[str] = []

    def observed(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except ExecutionError as error:
            raised.append(_error_line(error))
            raise

    observed.gpucnn_raised = raised  # type: ignore[attr-defined]
    formatter._run_python = observed
    return raised


def _error_line(error: BaseException) -> str:
    """The block's error as one short printable line (``ValueError: ...``)."""
    from gpucnn.typed import printable

    cause = error.__cause__
    if cause is not None:
        line = f"{type(cause).__name__}: {cause}".strip()
    else:  # the last line of the traceback markdown-exec made, without its code fence
        lines = [t.strip() for t in str(error).splitlines() if t.strip() and not t.strip().startswith("```")]
        line = lines[-1] if lines else "no output"
    line = printable(line)
    return line if len(line) <= 200 else line[:199] + "\u2026"


def on_page_markdown(markdown: str, page: Any, config: Any = None, files: Any = None, **_: Any) -> str:
    # Markdown rendering (markdown-exec's blocks, mkdocs-jupyter's execution)
    # runs between this event and on_page_content.
    _block_raises().clear()
    _PAGE_START[page.file.src_uri] = time.perf_counter()
    _RENDER_WARNINGS[page.file.src_uri] = _WarningsDuringRender().__enter__()
    _RENDERING["page"] = page.file.src_uri
    _RENDERING["snippets"] = {}
    from gpucnn.sources import begin_page

    begin_page(page.file.src_uri)  # the page's "No GPU in this build" note is printed once
    # markdown-exec numbers the ids of every block's output across the whole build: a page served from the page
    # cache would shift the ids of every page rendered after it. Numbered per page, a page reads the same
    # whichever pages before it were served (ids need only be unique within their page).
    with contextlib.suppress(ImportError):
        from markdown_exec import MarkdownConverter

        MarkdownConverter.counter = 0
    if page.file.src_uri.endswith((".py", ".ipynb")):
        _measure_before_kernel()
        _render_despite_an_unwritable_cache(page)
    snippets = ((config.get("mdx_configs") if config else None) or {}).get("pymdownx.snippets") or {}
    for base in snippets.get("base_path", []):
        for name in _SNIPPET_INCLUDE.findall(markdown):
            path = Path(base) / name
            if path.is_file() and name not in _RENDERING["snippets"]:
                _RENDERING["snippets"][name] = path.read_text(encoding="utf-8", errors="replace")
    if not page.file.src_uri.endswith((".py", ".ipynb")):  # the notebook has mkdocs-jupyter's cache
        # The cache key is the Markdown as written; a page the cache serves is not rendered at all.
        _serve_or_note_page(markdown, page, files)
        if page.file.src_uri not in _SERVED_PAGES:
            markdown = _render_template(markdown, page, config)
    return markdown


def _render_template(markdown: str, page: Any, config: Any) -> str:
    """The page's words over this build's facts (gpucnn.templating), or a one-line error naming page and line."""
    from gpucnn.templating import TemplateError, render_page

    docs_dir = (config.get("docs_dir") if config else None) or "docs"
    try:
        return render_page(markdown, page.file.src_uri, docs_dir)
    except TemplateError as exc:
        raise PluginError(str(exc)) from None


def _render_despite_an_unwritable_cache(page: Any) -> None:
    """A full disk (or any write error) while mkdocs-jupyter stores the notebook's page in its cache costs the
    next build its speed, not this build: mkdocs-jupyter writes its entry after making the page, inside its
    ``page.render``, and a failed write would end the build. The page it made is kept; the half-written entry
    is dropped with this build's working copy of the cache (``_commit_notebook_cache`` keeps readable ones only).
    """
    render = page.render

    def render_then_cache(config: Any, files: Any) -> None:
        page.content = None
        try:
            render(config, files)
        except OSError as exc:
            if page.content is None:  # the page itself was not made: a real failure
                raise
            log.info("gpucnn: the notebook's page was not cached (%s): the next build runs it again", exc)

    page.render = render_then_cache


def _measure_before_kernel() -> None:
    """Measure the notebook's experiments in this process, before mkdocs-jupyter starts its kernel.

    The kernel is a new process: a GPU's first CUDA call and first torch.compile cost it seconds of
    start-up that this process has already paid. The kernel then reads the cached results. Skipped
    when the notebook's results were kept with its cached page (that page is then reused, and a new
    measurement would not be the one it shows), and without a notebook cache (GPUCNN_FRESH, where
    the kernel measures again whatever it finds).
    """
    if not _NOTEBOOK_RESULTS or any(any(kept.glob("*.json")) for kept in _NOTEBOOK_RESULTS):
        return
    from gpucnn.pages.training import measure_live

    measure_live()


# Pages whose python blocks raised in this build (see on_page_content and on_env).
_FAILED_PAGES: list[str] = []


def on_env(env: Any, config: Any = None, files: Any = None, **_: Any) -> Any:
    """After every page's content is made and before any page is written: fail on the blocks that raised."""
    failed, _FAILED_PAGES[:] = list(_FAILED_PAGES), []
    if failed:
        raise PluginError("python blocks raised (without -q, markdown-exec's warnings above show their code and "
                          "tracebacks):"
                          "\n  " + "\n  ".join(failed))
    return env


@event_priority(100)  # first: the page cache stores the HTML as rendered, before any other handler changes it
def on_page_content(html: str, page: Any, files: Any = None, **_: Any) -> str:
    start = _PAGE_START.pop(page.file.src_uri, None)
    if start is not None:
        _PAGE_TIMES[page.file.src_uri] = time.perf_counter() - start
    _RENDERING["page"] = None
    # Every block that raised since this page's on_page_markdown: pages render one at a time.
    raised = _block_raises()
    failed = list(raised)
    raised.clear()
    # Stop recording before any failure is raised: its handler must not stay on the root logger.
    recorder = _RENDER_WARNINGS.pop(page.file.src_uri, None)
    if recorder is not None:
        recorder.__exit__(None, None, None)
    if failed:
        # Every page's content is made before any page is written: on_env fails the build in between, naming
        # every page whose block raised, so that no traceback page is published.
        _FAILED_PAGES.append(f"page {page.file.src_uri}: a python block raised ({failed[0]})")
    if recorder is not None and recorder.found:
        raise PluginError(f"page {page.file.src_uri}: a warning was raised while it was built "
                          "(remove it at its cause):\n  " + "\n  ".join(recorder.found))
    if page.file.src_uri.endswith((".py", ".ipynb")):
        _fail_on_notebook_stderr(html, page.file.src_uri)
    from gpucnn.sources import pending_sources

    if pending_sources():
        raise PluginError(f"page {page.file.src_uri}: figures at its end have no sources line: end the notebook's "
                          "last section with a cell that prints gpucnn.render.section_sources()")
    stored = _VERIFYING.pop(page.file.src_uri, None)
    if stored is not None and not failed:
        _verify_served_copy(stored, html, page.file.src_uri)
    if not failed:
        _store_rendered_page(html, page, recorder.mkdocs_warnings if recorder is not None else [])
    return _rewrite_printed_links(html, page, files) if files is not None else html


def _verify_served_copy(stored: str, html: str, src_uri: str) -> None:
    """GPUCNN_VERIFY: fail where a page rendered again reads otherwise than the copy the cache would have served."""
    from gpucnn import page_cache
    from gpucnn.render import as_reused

    difference = page_cache.first_difference(stored, as_reused(html))
    if difference is not None:
        page_cache.discard(src_uri)  # the next build renders it
        from gpucnn.typed import printable

        raise PluginError(f"page {src_uri}: {page_cache.VERIFY_ENV}: rendered again, it differs from the copy the "
                          "page cache serves, so a block prints something its key does not cover (a file it "
                          f"reads, the clock); the copy was removed. {printable(difference)}")


def _fail_on_notebook_stderr(html: str, src_uri: str) -> None:
    """A notebook cell's stderr (a warning, a log line) would be published: fail instead, naming the cell."""
    from gpucnn.site_guard import SHOWS_STDERR_TAG, notebook_stderr_cells

    cells = notebook_stderr_cells(html)
    if cells:
        raise PluginError(f"page {src_uri}: these cells wrote to stderr, which the page would show (remove it at "
                          f"its cause, or tag a cell that shows it on purpose with {SHOWS_STDERR_TAG!r}):\n  "
                          + "\n  ".join(cells))


# Markdown printed by an executed block is rendered by markdown-exec, which does
# not turn `[x](other.md#a)` into a page URL as MkDocs does: do it here. A target
# that is not a page is left as is, for tests/test_links.py to report.
_MD_HREF = re.compile(r'href="(?![a-zA-Z][a-zA-Z0-9+.-]*:|/|#)([^"#?]+\.md)(#[^"]*)?"')


def _rewrite_printed_links(html: str, page: Any, files: Any) -> str:
    def fix(m: re.Match[str]) -> str:
        path = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), m.group(1)))
        target = files.get_file_from_path(path)
        if target is None:
            return m.group(0)
        return f'href="{target.url_relative_to(page.file)}{m.group(2) or ""}"'

    return _MD_HREF.sub(fix, html)


@event_priority(-1000)  # after mkdocs-jupyter's eviction, and last: the guard sees the finished site
def on_post_build(config: Any) -> None:
    started = time.perf_counter()
    from gpucnn.results import SHARE_ENV, build_results, noisy_points, shared_results, write_results_json

    for r in shared_results():
        log.info("gpucnn: %s(%s) from the notebook page: measured %s in %.1f s", r.experiment,
                 ", ".join(f"{k}={v}" for k, v in sorted(r.params.items())), r.measured_at, r.elapsed_s)

    for kept in _NOTEBOOK_RESULTS:
        try:
            kept.mkdir(parents=True, exist_ok=True)
            for path in Path(os.environ[SHARE_ENV]).glob("*.json"):
                _write_if_changed(kept / path.name, path.read_text(encoding="utf-8"))
        except OSError as exc:
            log.info("gpucnn: the notebook's results were not kept with its cache (%s)", exc)
    _commit_notebook_cache()

    path = Path(config["site_dir"]) / "results.json"
    write_results_json(path)
    log.info("gpucnn: wrote results.json with %d experiments", len(build_results()))
    if noisy := noisy_points(build_results()):
        log.info(noisy)
    shutil.rmtree(os.environ.pop(SHARE_ENV, ""), ignore_errors=True)
    _restore_environment()
    from gpucnn.chart_cache import STATS as charts

    # The notebook's charts are drawn in its kernel, and counted there.
    log.info("gpucnn: %d charts drawn, %d reused from the chart cache (pages outside the notebook)",
             charts["drawn"], charts["reused"])
    log.info("gpucnn: %d pages served from the page cache, %d rendered (pages outside the notebook)",
             len(_SERVED_PAGES), sum(1 for uri in _PAGE_TIMES
                                     if uri not in _SERVED_PAGES and not uri.endswith((".py", ".ipynb"))))
    slowest = sorted(_PAGE_TIMES.items(), key=lambda kv: -kv[1])[:5]
    if slowest:
        log.info("gpucnn: slowest pages: %s", ", ".join(f"{name} {s:.1f} s" for name, s in slowest))
    _guard_site(config)
    # The rest of a build is MkDocs itself: loading plugins, templates, the search index.
    log.info("gpucnn: where the time went: set-up (torch, hardware, archive) %.1f s, rendering %d pages %.1f s, "
             "results.json, caches and site guard %.1f s", sum(_SETUP_TIME), len(_PAGE_TIMES),
             sum(_PAGE_TIMES.values()), time.perf_counter() - started)


def _guard_site(config: Any) -> None:
    """Fail the build on an off-site request or a build-machine path in the output, whichever plugin put it there."""
    lines = _remove_unpublishable(config)
    if lines:
        raise PluginError("the built site must not contain these (the files were removed):\n  " + "\n  ".join(lines))


def _remove_unpublishable(config: Any) -> list[str]:
    """Remove each output file that holds an off-site URL or a build-machine path; say which and why.

    Removed, so that a failed build leaves nothing in site/ that must not be published.
    """
    from urllib.parse import urlsplit

    from gpucnn.site_guard import build_machine_paths, check_site

    site_dir = Path(config["site_dir"])
    if not site_dir.is_dir():
        return []
    checkout = Path(config["config_file_path"]).resolve().parent if config.get("config_file_path") else None
    host, paths = urlsplit(config.get("site_url") or "").hostname, build_machine_paths(checkout)
    clean = _CleanFiles(host, paths)
    problems = check_site(site_dir, host, paths, known_clean=clean)
    clean.save(problems)
    lines = []
    for path, found in problems.items():
        path.unlink(missing_ok=True)
        lines += [f"{path.relative_to(site_dir).as_posix()}: {what}" for what in found]
    return lines


class _CleanFiles:
    """Output files that passed the site guard, remembered by their text from one build to the next.

    Scanning every page, the search index and results.json was about a tenth of an unchanged rebuild,
    which writes the same pages again. A file is skipped only where its exact text passed the
    same checks before: the key covers the guard's code (site_guard.py, this file), the site's host
    and the build-machine paths looked for. Only the last build's clean files are kept.
    """

    def __init__(self, host: str | None, paths: list[str]) -> None:
        import hashlib
        import json

        from gpucnn import site_guard
        from gpucnn.results import cache_dir

        salt = hashlib.sha256(json.dumps([host, paths]).encode())
        for code in (site_guard.__file__, __file__):
            salt.update(Path(code).read_bytes())
        self._salt = salt.digest()
        self._file = cache_dir() / "site-guard.json"
        try:
            known = json.loads(self._file.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or unreadable: every file is scanned
            known = []
        self._known = set(known) if isinstance(known, list) else set()
        self._seen: dict[Path, str] = {}

    def __call__(self, path: Path, text: str) -> bool:
        import hashlib

        digest = hashlib.sha256(self._salt + path.suffix.encode() + b"\0" + text.encode()).hexdigest()
        self._seen[path] = digest
        return digest in self._known

    def save(self, problems: dict[Path, list[str]]) -> None:
        import json

        from gpucnn.results import atomic_write_text

        clean = sorted({d for path, d in self._seen.items() if path not in problems})
        with contextlib.suppress(OSError):  # an unwritable cache costs the next build its speed only
            atomic_write_text(self._file, json.dumps(clean))

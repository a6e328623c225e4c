"""Page facts: one module per page (``common`` holds what several share), each turning experiment results into
the facts its page's words are written over (frozen dataclasses: numbers, verdicts, the sources they stand
on) and into its tables and charts. The words themselves are in ``docs/``: the page's Markdown is a Jinja
template over these facts (``gpucnn.templating``). No page module imports another.
"""

"""The build machinery: what gpucnn adds to a MkDocs build, one module per job.

``gpucnn/mkdocs_hooks.py`` (what mkdocs.yml loads) only wires MkDocs' events to these modules.
"""

"""Page builders: one module per page, each turning experiment results into the
Markdown, tables and charts that the page prints. Pages stay thin: a fence
calls one function here and prints what it returns.
"""

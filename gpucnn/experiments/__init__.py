"""Experiments: what to measure. One module per topic, one function per experiment.

Each experiment is registered with ``@experiment`` and returns a dict of
Measurements, Sweeps and plain values; pages call it through
``gpucnn.results.run`` so that it is cached and lands in results.json.
"""

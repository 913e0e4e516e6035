"""Side-by-side benchmarks of gepa_graph against the reference ``gepa`` package (issue 6).

Run from the repository root, e.g. ``python -m benchmarks.search_efficiency --seeds 20``;
see benchmarks/README.md.
"""

"""The I/O around the search for a PTS run over a dataset (``run_pts.py``): questions, one question's
search, its records (in producers/ shards), the export to ``pairs.jsonl`` and plots.

The search itself (``phi4_recipes.pts``) never imports this package; this package takes plain values
(seeds, counts, a ``PTSConfig``), never a script's options object.
"""

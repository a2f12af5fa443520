"""Tools built on the core: compression, distillation, CTranslate2 export, benchmarks, attention plots.

The core (everything in mt/ outside this folder) never imports from here; tests/test_boundary.py keeps it so.
"""

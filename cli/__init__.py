"""The ops and managers' CLI (``starter.py`` is its entry point).

``args`` and ``table`` are plain Python, so ``--help`` answers at once; everything that talks to
Temporal or loads the domain (pydantic) is imported only once a command is known.
"""

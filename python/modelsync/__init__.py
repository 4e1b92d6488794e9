"""modelsync: a declarative promotion controller for ML model registries.

The package ships the ``modelsync`` binary as a script of the environment it
is installed into; ``python -m modelsync`` runs it (see ``__main__``).
"""

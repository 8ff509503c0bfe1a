"""Runnable experiments that answer the seeds' questions; each writes a report.

Importing this package registers them (``archlab list experiments``).
"""

from archlab.experiments import mlp_activations  # noqa: F401

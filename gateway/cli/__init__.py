"""``pointsnet``: the root command line of :mod:`chain.cli` with the gateway's commands.

The console entry point (``pointsnet = "gateway.cli:app"``, or ``python -m
gateway.cli``). Each module adds its commands to the root ``app``:

- :mod:`gateway.cli.serve`: ``serve`` (the process roles) and ``demo`` (make run), whose
  partners :mod:`gateway.cli.demo` registers;
- :mod:`gateway.cli.merchants`: ``merchant …`` and ``member …``;
- :mod:`gateway.cli.db`: ``db upgrade`` (the migrations; ``serve`` runs it as a child);
- :mod:`gateway.cli.audit`: ``audit reconcile`` (the chain against the database);
- :mod:`gateway.cli.harness`: ``bench …`` and ``chaos``, the one module that loads
  the harnesses (``bench``), lazily, inside their command bodies;
- :mod:`gateway.cli.common`: what they share (a migrated context, failures).
"""

from __future__ import annotations

from chain.cli import app
from gateway.cli import audit, db, harness, merchants, serve
from gateway.cli.common import open_context

__all__ = ["app", "audit", "db", "harness", "merchants", "open_context", "serve"]

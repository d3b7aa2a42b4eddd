"""Process roles and the ops endpoints' logic.

Modules, in the order a deployment starts them:

- :mod:`~gateway.runtime.supervisor` -- role ``all`` as processes: the API here,
  the outbox workers and the indexer as supervised children;
- :mod:`~gateway.runtime.background` -- the worker and indexer roles as threads, and
  ``serve --role worker|indexer`` opening only what its role uses;
- :mod:`~gateway.runtime.lanes` -- one outbox worker per signer key, never two
  for the same key;
- :mod:`~gateway.runtime.health` -- readiness (``/readyz``): can this
  deployment take events and get them on chain?
- :mod:`~gateway.runtime.metrics` -- ``/metrics`` (Prometheus), computed from the
  database when scraped.
"""

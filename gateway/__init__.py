"""The pointsnet gateway: merchants' events in, mints and burns on chain out.

Packages and modules, in the order one merchant event passes through them
(``docs/ARCHITECTURE.md`` walks it step by step):

- :mod:`gateway.app` wires :mod:`gateway.api` (HTTP: routes, dependencies, one
  error body) onto :mod:`gateway.settings`, :mod:`gateway.context` and
  :mod:`gateway.db`;
- :mod:`gateway.services` (the domain) validates with :mod:`gateway.schemas`, asks
  :mod:`gateway.rules` (the pure engine) and stores events and their chain ops
  (:mod:`gateway.models`) a chunk at a time (:mod:`gateway.services.accept`);
  single-event requests are grouped into one such transaction by
  :mod:`gateway.api.group_commit`;
- :mod:`gateway.outbox` (the worker and chain recovery) signs and sends them
  through :mod:`chain.sender` and :mod:`chain.jsonrpc` and follows their receipts;
- :mod:`gateway.webhooks` tells the merchant; :mod:`gateway.indexer` reads the
  chain's logs back for members' history and the audit page;
- :mod:`gateway.runtime` runs the process roles; :mod:`gateway.cli` is the
  ``pointsnet`` command; :mod:`gateway.errors` holds ``GatewayError`` and every
  service error.
"""

"""The audit page's data, read from the chain alone (never the gateway's database).

Modules, in the order a request uses them:

- :mod:`~gateway.services.audit.snapshot` -- the records up to one block, indexed;
- :mod:`~gateway.services.audit.reader` -- one history replay per process, then
  extended block range by block range (reorgs and new admins read it again);
- :mod:`~gateway.services.audit.queries` -- the history search, its pages and CSV;
- :mod:`~gateway.services.audit.reports` -- overview, settlement, rule timeline;
- :mod:`~gateway.services.audit.recompile` -- a fresh compile as a background job;
- :mod:`~gateway.services.audit.view` -- :class:`AuditView`, all of the above for the API.
"""

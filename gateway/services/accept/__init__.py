"""The set-based accept path behind :mod:`gateway.services.events`.

- :mod:`~gateway.services.accept.reads`: what a chunk of events needs, one query per table;
- :mod:`~gateway.services.accept.chunk`: each event decided in memory, in order;
- :mod:`~gateway.services.accept.ops`: the chain ops of an accepted event;
- :mod:`~gateway.services.accept.counters`: per-member (merchant, programme day) buckets;
- :mod:`~gateway.services.accept.writes`: one multi-row statement per table.
"""

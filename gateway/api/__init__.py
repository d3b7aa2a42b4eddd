"""HTTP API: routers, dependencies, error translation.

:mod:`~gateway.api.deps` (``Annotated`` dependencies), :mod:`~gateway.api.errors`
(every error as ``{"error": {"code", "message", "details"}}``),
:mod:`~gateway.api.limits` (body guard), :mod:`~gateway.api.pages` (static pages'
headers), and one router per resource under :mod:`gateway.api.routes`:
``events``, ``members``, ``rules``, ``rewards``, ``webhooks`` (merchants);
``wallet``, ``catalog``, ``badges``, ``wallet_page`` (members); ``audit`` (auditors).
"""

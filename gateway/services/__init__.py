"""Domain services: the gateway's logic, free of HTTP.

Modules, one domain each:

- merchants and their programmes: :mod:`~gateway.services.merchants` (admission,
  API keys, rule sets, webhooks' secrets);
- a merchant's events: :mod:`~gateway.services.events` (accept, evaluate with
  :mod:`gateway.rules`, queue chain ops for the outbox), :mod:`~gateway.services.members`
  (customer -> member, custodial by default);
- spending and moving points: :mod:`~gateway.services.rewards` (catalog and the one
  redemption path), :mod:`~gateway.services.transfers`, both checked by
  :mod:`~gateway.services.consent` (deadline, nonce, signature, frozen, paused);
- the member wallet: :mod:`~gateway.services.sessions` (SIWE, login links, sessions),
  :mod:`~gateway.services.member_view` (what ``/v1/wallet/me`` shows, history),
  :mod:`~gateway.services.accounts` (link codes, claims), :mod:`~gateway.services.badges`
  (badge metadata), :mod:`~gateway.services.badge_art` (the badge images);
- the auditor's side: :mod:`~gateway.services.audit` (the audit page, from the chain
  alone) and :mod:`~gateway.services.reconcile` (database against chain).
"""

"""The loyalty rules engine: pure functions from a merchant event to a decision.

Modules, one concern each:

- :mod:`~gateway.rules.model` -- :class:`RuleSet` (a merchant's programme as
  validated data), the seed programme, canonical JSON and its keccak hash;
  :mod:`~gateway.rules.sections` -- the parts of a rule set;
- :mod:`~gateway.rules.fx` -- dated FX rates to the network unit;
  :mod:`~gateway.rules.currencies` -- ISO 4217 codes;
- :mod:`~gateway.rules.engine` -- :func:`evaluate` and the input/output types;
- :mod:`~gateway.rules.tiers` (RFM tiers), :mod:`~gateway.rules.multipliers`
  (amount-based points), :mod:`~gateway.rules.earning` (purchases),
  :mod:`~gateway.rules.activities` (check-in, share, review, sign-up, referral),
  :mod:`~gateway.rules.refunds` (clawback), :mod:`~gateway.rules.guards`
  (anti-abuse), :mod:`~gateway.rules.days` (programme days);
- :mod:`~gateway.rules.badges` -- the badge catalogue;
  :mod:`~gateway.rules.decision` -- :class:`Decision` and reason codes;
  :mod:`~gateway.rules.errors` -- :class:`RuleError` and its codes.

No I/O, no clock, no randomness: time comes in with the event.
"""

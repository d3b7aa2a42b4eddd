"""The auditor's view of the network, from an RPC endpoint and the hub address alone.

Modules, in the order data flows through them:

- the one JSON-RPC client is :mod:`chain.jsonrpc` (calls, batches, raw JSON);
- :mod:`chain.audit.reader`: discovery of the network from the hub, then every log
  of its contracts through the paged reader (:mod:`chain.logs`), with block times,
  decoded by the one decoder (:mod:`chain.decode`) into typed records
  (:mod:`chain.records`);
- :mod:`chain.audit.supply`: the contracts' own views at a block, and the supply
  invariant checked against the records;
- :mod:`chain.audit.settlement`: per merchant issued / redeemed / clawed back and its
  value over a range;
- :mod:`chain.audit.timeline`: rule and governance changes in a range;
- :mod:`chain.audit.rules`: each merchant's rule-set versions from their published
  texts, checked, with the diff between versions (:mod:`chain.audit.ruleset_diff`);
- :mod:`chain.audit.anomalies`: what the history shows that the rules do not allow;
- :mod:`chain.audit.report`: all of the above as one report, and the CSV;
- :mod:`chain.audit.cli`: ``pointsnet audit report``, ``rules`` and ``verify`` (imported
  by the CLI only).

Reports are pure functions of the records (and, for the supply invariant, of the
chain's own views at the same block). This package re-exports what callers use.
"""

from chain.abi import ROLE_ARTIFACTS, ZERO_ADDRESS, ZERO_WORD, event_topic
from chain.audit.anomalies import (
    ANOMALY_CHECKS,
    Anomaly,
    attribution_anomalies,
    cap_anomalies,
    clawback_anomalies,
    find_anomalies,
    mint_kind_name,
    pause_anomalies,
    rule_anomalies,
    sequence_anomalies,
    status_anomalies,
)
from chain.audit.reader import AuditLog, Contracts, History, ProgressCallback
from chain.audit.report import (
    VALUE_CHANGE_KINDS,
    VALUE_CHANGE_PARTS,
    AuditReport,
    build_report,
    csv_columns,
    is_value_change,
    of_kind,
    write_csv,
)
from chain.audit.rules import (
    MerchantRules,
    Published,
    RulesReport,
    RuleVersion,
    canonical_text,
    rule_history,
    rules_report,
)
from chain.audit.ruleset_diff import DiffLine, diff_rule_sets
from chain.audit.settlement import (
    MerchantSettlement,
    SettlementReport,
    format_money,
    settlement_report,
)
from chain.audit.supply import (
    ChainState,
    Check,
    MerchantCounters,
    SupplyReport,
    chain_state_at,
    replay_balances,
    supply_report,
)
from chain.audit.timeline import TimelineEntry, rule_timeline
from chain.decode import decode_logs
from chain.errors import AuditError, AuditUsageError, RpcError, RpcTransportError
from chain.jsonrpc import Rpc, block_at_time
from chain.logs import is_limit_error, suggested_range_end
from chain.records import (
    RECORD_TYPES,
    Address,
    BadgeAward,
    BadgeDefinition,
    BadgeMovement,
    Clawback,
    Issuance,
    IssuanceBatch,
    MerchantChange,
    OtherEvent,
    ParameterChange,
    PointValueChange,
    Record,
    Redemption,
    RelayedTransfer,
    RoleChange,
    RuleSetPublication,
    TierChange,
    TimelockCall,
    TimelockCancel,
    TokenMovement,
    UnknownLog,
    checksum,
    iso_time,
    parse_time,
    record_dict,
)

__all__ = [
    "ANOMALY_CHECKS",
    "RECORD_TYPES",
    "ROLE_ARTIFACTS",
    "VALUE_CHANGE_KINDS",
    "VALUE_CHANGE_PARTS",
    "ZERO_ADDRESS",
    "ZERO_WORD",
    "Address",
    "Anomaly",
    "AuditError",
    "AuditLog",
    "AuditReport",
    "AuditUsageError",
    "BadgeAward",
    "BadgeDefinition",
    "BadgeMovement",
    "ChainState",
    "Check",
    "Clawback",
    "Contracts",
    "DiffLine",
    "History",
    "Issuance",
    "IssuanceBatch",
    "MerchantChange",
    "MerchantCounters",
    "MerchantRules",
    "MerchantSettlement",
    "OtherEvent",
    "ParameterChange",
    "PointValueChange",
    "ProgressCallback",
    "Published",
    "Record",
    "Redemption",
    "RelayedTransfer",
    "RoleChange",
    "Rpc",
    "RpcError",
    "RpcTransportError",
    "RuleSetPublication",
    "RuleVersion",
    "RulesReport",
    "SettlementReport",
    "SupplyReport",
    "TierChange",
    "TimelineEntry",
    "TimelockCall",
    "TimelockCancel",
    "TokenMovement",
    "UnknownLog",
    "attribution_anomalies",
    "block_at_time",
    "build_report",
    "canonical_text",
    "cap_anomalies",
    "chain_state_at",
    "checksum",
    "clawback_anomalies",
    "csv_columns",
    "decode_logs",
    "diff_rule_sets",
    "event_topic",
    "find_anomalies",
    "format_money",
    "is_limit_error",
    "is_value_change",
    "iso_time",
    "mint_kind_name",
    "of_kind",
    "parse_time",
    "pause_anomalies",
    "record_dict",
    "replay_balances",
    "rule_anomalies",
    "rule_history",
    "rule_timeline",
    "rules_report",
    "sequence_anomalies",
    "settlement_report",
    "status_anomalies",
    "suggested_range_end",
    "supply_report",
    "write_csv",
]

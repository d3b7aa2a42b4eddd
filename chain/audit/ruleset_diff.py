"""A readable diff between two rule sets, as the chain publishes them (canonical JSON).

Objects are compared key by key and named by their flattened path (``bonuses.signup``);
lists of objects are matched by their identity, ``key`` for campaigns and ``name`` for
tier levels (``campaigns[singles-day]``, ``tiers.levels[Gold]``); lists of scalars are
compared as sets (``badges.enabled[streak_7]``) unless only their order changed. Each
difference is one :class:`DiffLine`: ``earn_rate: 1 → 2``, ``+ campaigns[singles-day]
"Singles Day" x2 2026-11-11T00:00:00+08:00 → 2026-11-12T00:00:00+08:00``,
``- bonuses.signup (was 0)``.

Pure: it knows JSON, not the gateway's rule model (``chain`` does not import it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: Identity fields of list items, tried in this order.
ITEM_KEYS = ("key", "name")


@dataclass(frozen=True)
class DiffLine:
    """One difference: ``op`` is ``+`` (added), ``-`` (removed) or ``~`` (changed)."""

    op: str
    path: str
    old: Any = None
    new: Any = None
    #: False for a set member, whose path already names it (``badges.enabled[streak_7]``).
    show_value: bool = True

    @property
    def text(self) -> str:
        if not self.show_value:
            return f"{self.op} {self.path}"
        if self.op == "~":
            return f"{self.path}: {render_value(self.old)} → {render_value(self.new)}"
        if self.op == "+":
            summary = summarize(self.new)
            return f"+ {self.path}" + (f" {summary}" if summary else "")
        summary = summarize(self.old)
        return f"- {self.path}" + (f" (was {summary})" if summary else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "path": self.path,
            "old": self.old,
            "new": self.new,
            "text": self.text,
        }


def render_value(value: Any) -> str:
    """A value as a person reads it: strings bare, ``null``, objects as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def summarize(value: Any) -> str:
    """An added or removed item in one phrase: campaigns and tier levels by their terms."""
    if isinstance(value, dict):
        if "multiplier" in value and "starts_at" in value and "ends_at" in value:
            name = f'"{value["name"]}" ' if "name" in value else ""
            categories = value.get("categories")
            only = f" ({', '.join(map(str, categories))})" if categories else ""
            return (
                f"{name}x{render_value(value['multiplier'])} "
                f"{render_value(value['starts_at'])} → {render_value(value['ends_at'])}{only}"
            )
        if "multiplier" in value and "min_orders" in value:
            recency = value.get("max_recency_days")
            return (
                f"x{render_value(value['multiplier'])} from {render_value(value['min_orders'])} "
                f"orders and {render_value(value.get('min_spend'))} spend"
                + (f", last order within {recency} days" if recency is not None else "")
            )
    return render_value(value)


def diff_rule_sets(old: Any, new: Any) -> list[DiffLine]:
    """Every difference from ``old`` to ``new`` (parsed JSON), in path order."""
    out: list[DiffLine] = []
    _diff(old, new, "", out)
    return out


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _same(a: Any, b: Any) -> bool:
    # JSON's true is not 1: compare types as well as values.
    return type(a) is type(b) and a == b


def _item_key(*lists: list[Any]) -> str | None:
    """The identity field every item of ``lists`` has, unique within each list."""
    items = [item for values in lists for item in values]
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in ITEM_KEYS:
        if all(isinstance(item.get(key), str | int) for item in items) and all(
            len({item[key] for item in values}) == len(values) for values in lists
        ):
            return key
    return None


def _scalars(values: list[Any]) -> bool:
    return all(isinstance(v, str | int | float | bool) or v is None for v in values)


def _distinct(values: list[Any]) -> bool:
    return len({(type(v), v) for v in values}) == len(values)


def _diff(old: Any, new: Any, path: str, out: list[DiffLine]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for name in sorted(old.keys() | new.keys()):
            at = _join(path, name)
            if name not in new:
                out.append(DiffLine("-", at, old=old[name]))
            elif name not in old:
                out.append(DiffLine("+", at, new=new[name]))
            else:
                _diff(old[name], new[name], at, out)
        return
    if isinstance(old, list) and isinstance(new, list):
        key = _item_key(old, new)
        if key is not None:
            _diff_keyed(old, new, key, path, out)
            return
        if _scalars(old) and _scalars(new) and _distinct(old) and _distinct(new):
            _diff_sets(old, new, path, out)
            return
    if not _same(old, new):
        out.append(DiffLine("~", path, old=old, new=new))


def _diff_keyed(old: list[Any], new: list[Any], key: str, path: str, out: list[DiffLine]) -> None:
    olds = {item[key]: item for item in old}
    news = {item[key]: item for item in new}
    for ident in [*olds, *(k for k in news if k not in olds)]:
        at = f"{path}[{ident}]"
        if ident not in news:
            out.append(DiffLine("-", at, old=olds[ident]))
        elif ident not in olds:
            out.append(DiffLine("+", at, new=news[ident]))
        else:
            _diff(olds[ident], news[ident], at, out)
    common_old = [k for k in olds if k in news]
    common_new = [k for k in news if k in olds]
    if common_old != common_new:
        out.append(DiffLine("~", f"{path} order", old=common_old, new=common_new))


def _diff_sets(old: list[Any], new: list[Any], path: str, out: list[DiffLine]) -> None:
    removed = [v for v in old if not any(_same(v, w) for w in new)]
    added = [v for v in new if not any(_same(v, w) for w in old)]
    for value in removed:
        out.append(DiffLine("-", f"{path}[{render_value(value)}]", old=value, show_value=False))
    for value in added:
        out.append(DiffLine("+", f"{path}[{render_value(value)}]", new=value, show_value=False))
    if not removed and not added and not all(_same(a, b) for a, b in zip(old, new, strict=True)):
        out.append(DiffLine("~", f"{path} order", old=old, new=new))

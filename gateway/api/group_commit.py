"""Group commit: concurrent ``POST /v1/events`` requests of a process share transactions.

One event per request used to mean one write transaction per request, each in a
threadpool thread of its own, all of them queueing for SQLite's one writer (or
PostgreSQL's commit flush): the commit, not the event, was the cost.  Here the
requests' coroutines hand their event to one committer thread per process and
await its answer.  The committer works in turns: a turn takes the events waiting
for the merchant whose event has waited longest (up to ``max_events``) and
accepts them with one :func:`gateway.services.events.submit_many` call, which
keeps every per-item guarantee: its own answer, a replay or a 422 on a reused key (also when
two requests of one group carry the same key), refusals stored under their keys,
exactly once under concurrency.

The window is first the commit itself: events arriving while a group is being
committed wait for that commit and go together in their merchant's next turn, so
the group grows with the load (arrival rate times the time of a round of turns).
Turns by merchant, rather than a group of everything waiting split by merchant,
let a merchant's events that arrive during another merchant's commit join their
merchant's coming turn instead of waiting for the whole group to finish.  An event arriving after
a quiet spell is committed at once, alone: a lone request never waits for
company it will not get.  Only while the committer is busy (it answered a group
less than ``BUSY_WINDOWS`` windows ago) does a group also wait up to ``window``
(``POINTSNET_GROUP_COMMIT_WINDOW_MS``, default 2 ms) to fill: at moderate rates
the commits are short and the groups small (1.5 to 3.5 events at 300 requests/s
measured), and a transaction per one or two events costs about twice the CPU per
event of a group of twenty.  The default stays at the short end because every
request pays it in latency; 5 ms doubled the groups in that measurement.

Requests from the fast path (:mod:`gateway.api.fast_events`) bring their API key,
not their merchant: before a turn the committer looks up the keys of every request
waiting at once and checks each as the route's ``current_merchant`` does (known
key, rate limit, active merchant); a key it refuses is left for the route to answer.

A group that fails as a whole (an unexpected error, contention after the
service's retries) wrote nothing: each of its events is then accepted again on
its own, so a failure is answered to the request it belongs to and no other.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from gateway.context import GatewayContext
from gateway.crypto import hash_api_key
from gateway.models import Merchant
from gateway.schemas import EventCreate
from gateway.services import events as event_service

log = logging.getLogger("pointsnet.api.group_commit")

#: The committer counts as busy this many windows after it answered a group.
BUSY_WINDOWS = 4
#: (HTTP status, JSON answer) as :func:`gateway.services.events.submit_many` gives them.
Answer = tuple[int, dict[str, Any]]
#: What accepts one merchant's events (``submit_many``'s signature).
SubmitMany = Callable[[GatewayContext, Merchant, list[tuple[str, EventCreate]]], list[Answer]]


@dataclass
class _Waiting:
    """One request's event and the future its coroutine awaits."""

    merchant: Merchant | None  # None: to authenticate by ``api_key`` in the committer
    key: str
    body: EventCreate
    future: asyncio.Future[Answer]
    api_key: str = ""
    outcome: Answer | BaseException | None = field(default=None)
    resolved: bool = False  # handed to the event loop

    @property
    def turn(self) -> tuple[str, int | str]:
        """Whose turn accepts this event: its merchant's (its API key's until authenticated)."""
        return (
            ("merchant", self.merchant.id) if self.merchant is not None else ("key", self.api_key)
        )

    def resolve(self) -> None:
        """Hand the outcome to the request's event loop (called from the committer)."""
        self.resolved = True
        loop = self.future.get_loop()
        if not loop.is_closed():
            loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        if self.future.done():  # the client went away: its event is accepted all the same
            return
        if isinstance(self.outcome, BaseException):
            self.future.set_exception(self.outcome)
        elif self.outcome is None:  # the committer itself failed: nothing was answered
            self.future.set_exception(RuntimeError("the event was not accepted"))
        else:
            self.future.set_result(self.outcome)


class NotAuthenticated(Exception):
    """The API key is unknown, rate limited or its merchant not active: nothing was
    accepted, and the request is for the route to answer (401, 429 or 403)."""


class GroupCommitter:
    """Accepts the events of concurrent requests in shared ``submit_many`` calls.

    One daemon thread, started with the first event and stopped by :meth:`close`
    (the app's lifespan closes it).
    ``max_events`` bounds a group (the service chunks it into transactions).
    """

    def __init__(
        self,
        context: GatewayContext,
        max_events: int = 64,
        submit_many: SubmitMany = event_service.submit_many,
        window: float = 0.0,
    ) -> None:
        self.context = context
        self.max_events = max(1, max_events)
        #: Seconds a group may wait for more events while the committer is busy.
        self.window = window
        self._last_commit = 0.0  # monotonic time the last group was answered
        self._submit_many = submit_many
        self._waiting: list[_Waiting] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: Groups committed and events in them (for tests and measurements).
        self.groups = 0
        self.events = 0

    async def submit(self, merchant: Merchant, key: str, body: EventCreate) -> Answer:
        """Accept one event exactly once: (HTTP status, JSON answer), refusals included;
        an error no answer was stored for is raised, as ``submit`` raises it."""
        return await self._enqueue(merchant, key, body, "")

    async def submit_with_api_key(self, api_key: str, key: str, body: EventCreate) -> Answer:
        """:meth:`submit` for the merchant owning ``api_key``, authenticated in the committer:
        one lookup for the whole group instead of a session per request.  Raises
        :class:`NotAuthenticated` when ``current_merchant`` would refuse the key (the
        caller lets the route answer), having accepted nothing."""
        return await self._enqueue(None, key, body, api_key)

    async def _enqueue(
        self, merchant: Merchant | None, key: str, body: EventCreate, api_key: str
    ) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        with self._ready:
            self._waiting.append(_Waiting(merchant, key, body, future, api_key))
            if self._thread is None:
                self._start()
            self._ready.notify()
        return await future

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is waiting, then stop the thread (the next event starts another:
        an app's lifespan may be entered again)."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._ready:
            self._stopping, self._thread = False, None
            if self._waiting:  # sent while the thread was ending
                self._start()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._stopping:
                    self._ready.wait()
                if not self._waiting:
                    return
                self._gather()
                new = [waiting for waiting in self._waiting if waiting.merchant is None]
            if new:
                self._admit(new)
            with self._ready:
                if not self._waiting:  # all refused
                    continue
                group = self._take_turn()
            self.commit(group)

    def _admit(self, new: list[_Waiting]) -> None:
        """Authenticate the API keys of every request waiting (one look-up for all
        merchants, not one per turn); those refused leave the queue, answered."""
        self._authenticate(new)
        refused = [waiting for waiting in new if waiting.merchant is None]
        if not refused:
            return
        gone = {id(waiting) for waiting in refused}
        with self._ready:
            self._waiting = [waiting for waiting in self._waiting if id(waiting) not in gone]
        for waiting in refused:
            waiting.resolve()

    def _take_turn(self) -> list[_Waiting]:
        """The events waiting for the merchant (or API key, for requests sent since the
        last look-up) of the oldest waiting event, oldest first, up to ``max_events``.
        Called holding the condition's lock."""
        turn = self._waiting[0].turn
        group: list[_Waiting] = []
        rest: list[_Waiting] = []
        for waiting in self._waiting:
            if len(group) < self.max_events and waiting.turn == turn:
                group.append(waiting)
            else:
                rest.append(waiting)
        self._waiting = rest
        return group

    def _gather(self) -> None:
        """While busy (a group was answered less than ``BUSY_WINDOWS`` windows ago) wait up
        to ``window`` for a fuller group; a first event after a quiet spell goes at once,
        and so does a turn while other merchants' events wait (theirs are the window in
        which this merchant's next events gather).  Called holding the condition's lock."""
        if self.window <= 0 or time.monotonic() - self._last_commit > BUSY_WINDOWS * self.window:
            return
        first = self._waiting[0].turn
        if any(waiting.turn != first for waiting in self._waiting):
            return
        deadline = time.monotonic() + self.window
        while len(self._waiting) < self.max_events and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._ready.wait(remaining)

    def commit(self, group: list[_Waiting]) -> None:
        """Accept ``group`` (one ``submit_many`` per merchant in it: a turn holds one) and
        answer each request as soon as its merchant's transaction is done."""
        try:
            self._authenticate([w for w in group if w.merchant is None])
            by_merchant: dict[int, list[_Waiting]] = {}
            for waiting in group:
                if waiting.merchant is not None:
                    by_merchant.setdefault(waiting.merchant.id, []).append(waiting)
                else:
                    waiting.resolve()  # not authenticated: for the route to answer
            for items in by_merchant.values():
                self._commit_merchant(items)
                for waiting in items:
                    waiting.resolve()
            self.groups += 1
            self.events += len(group)
        finally:
            for waiting in group:
                if not waiting.resolved:  # the committer failed before answering it
                    waiting.resolve()
            self._last_commit = time.monotonic()

    def _authenticate(self, items: list[_Waiting]) -> None:
        """Give each item the merchant of its API key, checked as ``current_merchant``
        checks it (known key, then the rate limit, then an active merchant); an item
        that fails gets :class:`NotAuthenticated` and no merchant."""
        if not items:
            return
        hashes = {w.api_key: hash_api_key(w.api_key) for w in items}
        try:
            with self.context.sessions() as session:
                merchants = {
                    m.api_key_hash: m
                    for m in session.scalars(
                        select(Merchant).where(Merchant.api_key_hash.in_(set(hashes.values())))
                    )
                }
                session.expunge_all()
        except Exception as exc:
            for waiting in items:
                waiting.outcome = exc
            return
        limiter = self.context.limiter
        for waiting in items:
            merchant = merchants.get(hashes[waiting.api_key])
            if (
                merchant is None
                or not limiter.allow(merchant.api_key_hash)
                or merchant.status != "active"
            ):
                waiting.outcome = NotAuthenticated()
            else:
                waiting.merchant = merchant

    def _commit_merchant(self, items: list[_Waiting]) -> None:
        try:
            answers = self._accept(items)
        except Exception as exc:
            if len(items) == 1:
                items[0].outcome = exc
                return
            log.warning("a group of %d events failed (%r); accepting them one by one",
                        len(items), exc)  # fmt: skip
            for waiting in items:
                try:
                    waiting.outcome = self._accept([waiting])[0]
                except Exception as alone:
                    waiting.outcome = alone
            return
        for waiting, answer in zip(items, answers, strict=True):
            waiting.outcome = answer

    def _accept(self, items: list[_Waiting]) -> list[Answer]:
        merchant = items[0].merchant
        assert merchant is not None
        answers = self._submit_many(self.context, merchant, [(w.key, w.body) for w in items])
        if len(answers) != len(items):
            raise RuntimeError(f"{len(answers)} answers for {len(items)} events")
        return answers

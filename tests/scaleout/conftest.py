"""Scale-out fixtures: PostgreSQL only (several worker processes share one database).

Without a reachable PostgreSQL server every test here is skipped, saying why.  When a
test fails, the tail of each worker process's log is printed with its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from factories import database_for
from scaleout_kit import Stack, start_stack

LOG_TAIL_LINES = 60


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with database_for("postgresql") as url:
        yield from start_stack(tmp_path_factory.mktemp("scaleout"), url)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.when == "call" and report.failed and isinstance(stack, Stack):
        for log in sorted(stack.tmp.glob("worker-*.log")):
            tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            report.sections.append((f"tail of {log.name}", "\n".join(tail)))
    return report

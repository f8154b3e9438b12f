"""Stress mode: the speculative-agent and async-agent tests, many times over.

Run ``python -m pytest -q -p no:cacheprovider --stress 50 tests/integration/test_stress.py`` (or set
``LGS_STRESS=50``); without it every test here is skipped (see ``tests/conftest.py``).
``.ci/stress`` runs it while two busy loops load the cores, which is how scheduling races
show up.

Each scenario is one test function of ``test_speculative_agent.py`` or
``test_async_calling.py`` with one combination of its ``parametrize`` values (functions
that need a fixture are left out, and so are the pure ``handle_tool_errors`` comparison
matrices: nothing in them is concurrent). A scenario runs N times in one event loop; every
run is classified:

- ``ok``;
- ``hang``: a test's guard fired (``GUARD_S``/``GUARD``: ``asyncio.timeout`` raising a
  plain ``TimeoutError``, or ``guarded`` failing with "hung for"); a library error, such as
  :class:`~langgraph_speculative.errors.WaitTimeoutError`, is not a hang but a failure;
- a failure (any other exception), counted by type and message.

The report (one line per scenario: runs, hangs, failures, slowest run) is printed at the
end of the session; a scenario passes only if every run was ``ok``.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from conftest import STRESS_REPORT, stress_repetitions
from helpers import REPO_ROOT

from langgraph_speculative.errors import WaitTimeoutError


def _load(relative: str) -> ModuleType:
    """A test module by its path (the unit tests live in their wing's folder)."""
    path = REPO_ROOT / "tests" / relative
    spec = importlib.util.spec_from_file_location(f"stress_{path.stem}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic models of the module resolve names through it
    spec.loader.exec_module(module)
    return module


MODULES: tuple[ModuleType, ...] = (
    _load("unit/nodes/test_speculative_agent.py"),
    _load("unit/nodes/test_async_calling_node.py"),
)
LEFT_OUT = {
    # deterministic comparisons with ToolNode, one tool call each: nothing to race
    "test_handle_tool_errors_behaves_as_in_tool_node",
    "test_the_default_is_tool_node_with_true",
}


@dataclass(frozen=True)
class Scenario:
    """One test function with one set of its parametrize values."""

    module: str
    function: Callable[..., Any]
    kwargs: dict[str, Any]

    @property
    def id(self) -> str:
        values = "-".join(str(v)[:24] for v in self.kwargs.values())
        name = f"{self.module.removeprefix('test_')}::{self.function.__name__}"
        return f"{name}[{values}]" if values else name


def _grid(function: Callable[..., Any]) -> list[dict[str, Any]] | None:
    """Every combination of a test function's parametrize values (None: it needs fixtures)."""
    axes: list[list[dict[str, Any]]] = []
    for mark in getattr(function, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names, values = mark.args[0], mark.args[1]
        keys = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        axis = []
        for value in values:
            raw = value.values if hasattr(value, "values") else value  # pytest.param
            row = raw if len(keys) > 1 else (raw[0] if hasattr(value, "values") else raw,)
            axis.append(dict(zip(keys, row, strict=True)))
        axes.append(axis)
    combos = [
        {k: v for part in parts for k, v in part.items()} for parts in itertools.product(*axes)
    ]
    wanted = set(inspect.signature(function).parameters)
    if any(set(c) != wanted for c in combos):
        return None  # a fixture (a server, a lab) the direct call cannot give
    return combos


def scenarios(modules: Sequence[ModuleType] = MODULES) -> Iterator[Scenario]:
    """The scenarios of ``modules``: their async test functions, with every combination."""
    for module in modules:
        for name, function in vars(module).items():
            if not name.startswith("test_") or name in LEFT_OUT:
                continue
            if not inspect.iscoroutinefunction(function):
                continue
            for kwargs in _grid(function) or ():
                yield Scenario(module.__name__, function, kwargs)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scenario" not in metafunc.fixturenames:
        return
    if not stress_repetitions(metafunc.config):  # off: one test, skipped (see conftest)
        metafunc.parametrize("scenario", [None], ids=["off"])
        return
    found = list(scenarios())
    metafunc.parametrize("scenario", found, ids=[s.id for s in found])


def classify(error: BaseException) -> str:
    """``hang`` when a test's guard fired, else the failure's type and message."""
    if isinstance(error, TimeoutError) and not isinstance(error, WaitTimeoutError):
        return "hang"
    if isinstance(error, pytest.fail.Exception) and "hung for" in str(error):
        return "hang"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:160]


@pytest.mark.stress
async def test_repeatedly(scenario: Scenario | None, request: pytest.FixtureRequest) -> None:
    assert scenario is not None
    runs = stress_repetitions(request.config)
    outcomes: Counter[str] = Counter()
    slowest = 0.0
    for _ in range(runs):
        started = time.perf_counter()
        try:
            await scenario.function(**scenario.kwargs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # pytest.fail and asyncio's CancelledError too
            outcomes[classify(error)] += 1
        else:
            outcomes["ok"] += 1
        slowest = max(slowest, time.perf_counter() - started)
    hangs = outcomes["hang"]
    failures = runs - outcomes["ok"] - hangs
    request.config.stash[STRESS_REPORT].append(
        f"{scenario.id}: {runs} runs, {hangs} hangs, {failures} failures, slowest {slowest:.2f} s"
    )
    assert outcomes == Counter(ok=runs), f"{scenario.id}: {dict(outcomes)}"


def test_every_agent_test_is_a_scenario_or_left_out_on_purpose() -> None:
    names = {s.function.__name__ for s in scenarios()}
    for module in MODULES:
        for name, function in vars(module).items():
            if name.startswith("test_") and inspect.iscoroutinefunction(function):
                needs_fixture = _grid(function) is None
                assert name in names or name in LEFT_OUT or needs_fixture, name
    assert "test_revision_cancels_dependents_and_tells_the_model" in names
    assert "test_chain_task_end_to_end" in names


def test_guards_firing_count_as_hangs() -> None:
    assert classify(TimeoutError()) == "hang"
    assert classify(WaitTimeoutError("x", 1.0)).startswith("WaitTimeoutError: waited 1 s for x")
    with pytest.raises(pytest.fail.Exception) as info:
        pytest.fail("hung for 20.0 s")
    assert classify(info.value) == "hang"
    assert classify(ValueError("kaput")) == "ValueError: kaput"

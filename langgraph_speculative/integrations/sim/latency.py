"""The latency model of the simulated model and tools (``BENCHMARKS.md``, shared).

Times are in milliseconds. A model request costs a time to first token (plus prefill time
for prompt tokens the back-end has not cached) and a time per output token; a tool call
costs a log-uniform latency in ``[lo, hi]`` seeded by a stable hash of (tool name,
canonical JSON arguments), so every mode of a benchmark sees the same latency for the same
call. Text is counted as ``ceil(len(utf8) / 4)`` tokens.

Example:
    ```python
    from langgraph_speculative.integrations.sim.latency import LatencyModel

    lat = LatencyModel.profile("cloud", seed=0)
    ms = lat.tool_ms("get_weather", {"city": "Paris"})
    assert 30 <= ms <= 500
    assert lat.tool_ms("get_weather", {"city": "Paris"}) == ms  # stable
    ```
"""

from __future__ import annotations

import argparse
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from langgraph_speculative.core.ledger import canonical_json

__all__ = ["Backend", "LatencyModel", "Profile", "count_tokens"]

Profile = Literal["cloud", "local"]
Backend = Literal["stateless", "interruptible"]
"""``stateless``: chat completions; results can only reach the model in a new request
(paying time to first token again). ``interruptible``: a decoding session that accepts
injected tokens at the next token boundary, paying prefill only."""

_PROFILES: dict[str, tuple[float, float]] = {"cloud": (300.0, 5.0), "local": (60.0, 10.0)}


def count_tokens(text: str) -> int:
    """Count the tokens of ``text`` the way the latency model does: ``ceil(utf8 bytes / 4)``."""
    return -(-len(text.encode("utf-8")) // 4)


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Seeded latencies of the simulated model and tools.

    Attributes:
        ttft_ms: Time to first token of each model request.
        tpot_ms: Decode time per output token.
        prefill_ms_per_1k: Prefill time per 1,000 uncached prompt tokens.
        tool_lo_ms: Lower bound of tool latency.
        tool_hi_ms: Upper bound of tool latency.
        seed: Seed of every random choice.
    """

    ttft_ms: float = 300.0
    tpot_ms: float = 5.0
    prefill_ms_per_1k: float = 0.0
    tool_lo_ms: float = 30.0
    tool_hi_ms: float = 500.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("ttft_ms", "tpot_ms", "prefill_ms_per_1k", "tool_lo_ms", "tool_hi_ms"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.tool_lo_ms > self.tool_hi_ms:
            raise ValueError(
                f"tool latency bounds reversed: lo={self.tool_lo_ms} > hi={self.tool_hi_ms}"
            )

    @classmethod
    def profile(cls, name: Profile | str = "cloud", **overrides: Any) -> LatencyModel:
        """Build the ``cloud`` (ttft 300 ms, tpot 5 ms) or ``local`` (60 ms, 10 ms) profile.

        Args:
            name: Profile name.
            **overrides: Fields to change (for example ``seed=3``).

        Raises:
            ValueError: On an unknown profile name.
        """
        if name not in _PROFILES:
            raise ValueError(f"unknown latency profile {name!r}; choose cloud or local")
        ttft, tpot = _PROFILES[name]
        return replace(cls(ttft_ms=ttft, tpot_ms=tpot), **overrides)

    @classmethod
    def zero(cls) -> LatencyModel:
        """A model with no latency at all (for tests and overhead measurement)."""
        return cls(ttft_ms=0.0, tpot_ms=0.0, tool_lo_ms=0.0, tool_hi_ms=0.0)

    @staticmethod
    def parse_tool_range(text: str) -> tuple[float, float]:
        """Parse a ``LO:HI`` (or single ``MS``) tool latency flag.

        Raises:
            ValueError: If the text is not one or two numbers.
        """
        parts = text.split(":")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"tool latency must be LO:HI in ms, got {text!r}") from None
        if len(values) == 1:
            return values[0], values[0]
        if len(values) != 2:
            raise ValueError(f"tool latency must be LO:HI in ms, got {text!r}")
        return values[0], values[1]

    def tool_ms(self, name: str, args: Mapping[str, Any]) -> float:
        """Latency of one tool call, log-uniform in ``[tool_lo_ms, tool_hi_ms]``.

        Stable across processes and modes: seeded by ``(seed, name, canonical_json(args))``.
        """
        lo, hi = self.tool_lo_ms, self.tool_hi_ms
        if hi <= 0 or lo == hi:
            return hi
        key = f"{self.seed}\x00{name}\x00{canonical_json(dict(args))}".encode()
        u = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
        lo = max(lo, 1e-3)
        return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))

    def estimate_ms(self, name: str, args: Mapping[str, Any], noise: float) -> float:
        """What the simulated model is told a call will take: a noisy estimate.

        The call's true latency (:meth:`tool_ms`) times ``exp(noise * z)`` with ``z`` a
        standard normal draw seeded by ``(seed, name, canonical args)``. ``noise`` 0 is an
        exact oracle; 0.5 is typically off by +-65%. Real apps supply their own estimates
        (a tool's ``metadata["expected_ms"]``); this models a model that roughly knows
        which of its calls are slow.

        Raises:
            ValueError: If ``noise`` is negative.
        """
        if noise < 0 or not math.isfinite(noise):
            raise ValueError(f"estimate noise must be a finite number >= 0, got {noise!r}")
        key = f"estimate\x00{self.seed}\x00{name}\x00{canonical_json(dict(args))}".encode()
        digest = hashlib.sha256(key).digest()
        u1 = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)
        u2 = int.from_bytes(digest[8:16], "big") / 2**64
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)  # Box-Muller
        return self.tool_ms(name, args) * math.exp(noise * z)

    def decode_ms(self, tokens: int) -> float:
        """Time to decode ``tokens`` output tokens."""
        return tokens * self.tpot_ms

    def prefill_ms(self, uncached_tokens: int) -> float:
        """Prefill time of ``uncached_tokens`` prompt tokens."""
        return uncached_tokens * self.prefill_ms_per_1k / 1000.0


# --- command-line flags ----------------------------------------------------------------


def add_latency_arguments(parser: argparse.ArgumentParser, *, estimates: bool = True) -> None:
    """Add the shared latency-model flags of ``BENCHMARKS.md`` to ``parser``.

    Args:
        parser: The sub-command's parser.
        estimates: Also add ``--estimate-noise`` (for commands whose simulated model
            orders calls by their estimated duration).
    """
    group = parser.add_argument_group("latency model")
    group.add_argument("--profile", choices=["cloud", "local"], default="cloud")
    group.add_argument("--ttft-ms", type=float, default=None, help="time to first token")
    group.add_argument("--tpot-ms", type=float, default=None, help="time per output token")
    group.add_argument(
        "--prefill-ms-per-1k", type=float, default=0.0, help="prefill per 1k uncached tokens"
    )
    group.add_argument("--tool-ms", default="30:500", help="tool latency LO:HI in ms")
    group.add_argument("--seed", type=int, default=0)
    if not estimates:
        return
    group.add_argument(
        "--estimate-noise",
        type=_noise,
        default=0.5,
        help="how well the simulated model knows each call's duration: log-normal sigma of "
        "its estimates (0: exact; 'none': no per-call knowledge, task order)",
    )


def _noise(text: str) -> float | None:
    if text.lower() == "none":
        return None
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"estimate noise must be >= 0 or 'none', got {text}")
    return value


def latency_from_args(args: argparse.Namespace) -> LatencyModel:
    """Build the :class:`LatencyModel` the flags of :func:`add_latency_arguments` describe."""
    lo, hi = LatencyModel.parse_tool_range(args.tool_ms)
    overrides: dict[str, float | int] = {
        "prefill_ms_per_1k": args.prefill_ms_per_1k,
        "tool_lo_ms": lo,
        "tool_hi_ms": hi,
        "seed": args.seed,
    }
    if args.ttft_ms is not None:
        overrides["ttft_ms"] = args.ttft_ms
    if args.tpot_ms is not None:
        overrides["tpot_ms"] = args.tpot_ms
    return LatencyModel.profile(args.profile, **overrides)

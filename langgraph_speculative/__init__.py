"""langgraph-speculative: make LangGraph tool-calling agents answer sooner.

The shared core is exported here: the call ledger every node writes to, the executor that
runs it, the safe/unsafe and idempotency labels of tools, and the interrupt-aware
checkpointer that makes runs crash-safe. Simulation and adapters live in
:mod:`langgraph_speculative.integrations`.
"""

from langgraph_speculative import _moved
from langgraph_speculative.core.executor import (
    Completion,
    ToolExecutor,
    idempotency_key_of,
    result_message_id,
)
from langgraph_speculative.core.ledger import CallLedger, CallRecord, CallState, Speculation
from langgraph_speculative.core.safety import (
    is_idempotent_tool,
    is_safe_tool,
    label_tool,
    takes_idempotency_key,
)
from langgraph_speculative.durability.checkpointer import InterruptAwareCheckpointer, journal_for
from langgraph_speculative.durability.journal import RunJournal
from langgraph_speculative.durability.resume import Resolution, ResumeState
from langgraph_speculative.errors import (
    CheckpointerError,
    ConcurrentResumeError,
    DataFormatError,
    IllegalTransitionError,
    JournalCorruptError,
    OutcomeUnknownError,
    PlanCacheError,
    RequestLimitError,
    ScriptError,
    SpeculativeError,
    StalledError,
    StreamFormatError,
    ToolTimeoutError,
    UnknownCallError,
    UnsafeBeforeCommitError,
    WaitTimeoutError,
)

__version__ = "0.2.0"

_moved.install()

__all__ = [
    "CallLedger",
    "CallRecord",
    "CallState",
    "CheckpointerError",
    "Completion",
    "ConcurrentResumeError",
    "DataFormatError",
    "IllegalTransitionError",
    "InterruptAwareCheckpointer",
    "JournalCorruptError",
    "OutcomeUnknownError",
    "PlanCacheError",
    "RequestLimitError",
    "Resolution",
    "ResumeState",
    "RunJournal",
    "ScriptError",
    "Speculation",
    "SpeculativeError",
    "StalledError",
    "StreamFormatError",
    "ToolExecutor",
    "ToolTimeoutError",
    "UnknownCallError",
    "UnsafeBeforeCommitError",
    "WaitTimeoutError",
    "__version__",
    "idempotency_key_of",
    "is_idempotent_tool",
    "is_safe_tool",
    "journal_for",
    "label_tool",
    "result_message_id",
    "takes_idempotency_key",
]

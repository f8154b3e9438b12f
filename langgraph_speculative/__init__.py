"""langgraph-speculative: make LangGraph tool-calling agents answer sooner.

The shared core is exported here: the call ledger every node writes to, the executor that
runs it, the safe/unsafe and idempotency labels of tools, and the interrupt-aware
checkpointer that makes runs crash-safe. Simulation and adapters live in
:mod:`langgraph_speculative.integrations`.
"""

from langgraph_speculative.checkpointer import InterruptAwareCheckpointer, journal_for
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
from langgraph_speculative.executor import (
    Completion,
    ToolExecutor,
    idempotency_key_of,
    result_message_id,
)
from langgraph_speculative.journal import RunJournal
from langgraph_speculative.ledger import CallLedger, CallRecord, CallState, Speculation
from langgraph_speculative.resume import Resolution, ResumeState
from langgraph_speculative.safety import (
    is_idempotent_tool,
    is_safe_tool,
    label_tool,
    takes_idempotency_key,
)

__version__ = "0.1.0"

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

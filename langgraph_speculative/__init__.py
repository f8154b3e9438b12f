"""langgraph-speculative: make LangGraph tool-calling agents answer sooner.

The shared core is exported here: the call ledger every node writes to, the executor that
runs it, and the safe/unsafe labels of tools. Simulation and adapters live in
:mod:`langgraph_speculative.integrations`.
"""

from langgraph_speculative.errors import (
    DataFormatError,
    IllegalTransitionError,
    ScriptError,
    SpeculativeError,
    StreamFormatError,
    ToolTimeoutError,
    UnknownCallError,
    UnsafeBeforeCommitError,
)
from langgraph_speculative.executor import (
    Completion,
    ToolExecutor,
    idempotency_key_of,
    result_message_id,
)
from langgraph_speculative.ledger import CallLedger, CallRecord, CallState, Speculation
from langgraph_speculative.safety import is_safe_tool, label_tool

__version__ = "0.1.0"

__all__ = [
    "CallLedger",
    "CallRecord",
    "CallState",
    "Completion",
    "DataFormatError",
    "IllegalTransitionError",
    "ScriptError",
    "Speculation",
    "SpeculativeError",
    "StreamFormatError",
    "ToolExecutor",
    "ToolTimeoutError",
    "UnknownCallError",
    "UnsafeBeforeCommitError",
    "__version__",
    "idempotency_key_of",
    "is_safe_tool",
    "label_tool",
    "result_message_id",
]

"""Model and embedding adapters, and the simulation the tests, demo and benchmarks run on.

The simulation is honest about what it simulates: latency (time to first token, time per
output token, tool latency) and the wire shapes of an OpenAI chat-completions stream. The
*choices* of the model come from a script.
"""

from langgraph_speculative.integrations.sim.latency import Backend, LatencyModel, count_tokens
from langgraph_speculative.integrations.sim.scripted_model import (
    ModelTurn,
    Responder,
    ScriptedChatModel,
    StreamPiece,
    plan_stream,
)
from langgraph_speculative.integrations.sim.scripted_tasks import (
    PlannedCall,
    ScriptedTask,
    TaskResponder,
)

__all__ = [
    "Backend",
    "LatencyModel",
    "ModelTurn",
    "PlannedCall",
    "Responder",
    "ScriptedChatModel",
    "ScriptedTask",
    "StreamPiece",
    "TaskResponder",
    "count_tokens",
    "plan_stream",
]

"""Speculative interaction: the input stream, the interaction format, speculation.

- :class:`InputStream` (:mod:`~langgraph_speculative.speculative.input_stream`): the partial
  input the app pushes while the user speaks.
- :mod:`~langgraph_speculative.speculative.interaction_format`: the clock-based transcript of
  events and actions the model reads and writes; its system prompt,
  :func:`interaction_system_prompt`, is in
  :mod:`~langgraph_speculative.speculative.interaction_prompt`.
- :class:`SpeculationManager` (:mod:`~langgraph_speculative.speculative.manager`): speculative
  calls, their revisions and the commit point.
- :class:`SpeculativeRun` (:mod:`~langgraph_speculative.speculative.run`): the live part of
  one interaction, the runtime context of the speculative agent graph
  (:func:`~langgraph_speculative.nodes.speculative.create_speculative_agent`).
"""

from langgraph_speculative.speculative.input_stream import InputStream, InputUpdate
from langgraph_speculative.speculative.interaction_prompt import interaction_system_prompt
from langgraph_speculative.speculative.manager import CommitOutcome, SpeculationManager
from langgraph_speculative.speculative.run import SpeculativeRun

__all__ = [
    "CommitOutcome",
    "InputStream",
    "InputUpdate",
    "SpeculationManager",
    "SpeculativeRun",
    "interaction_system_prompt",
]

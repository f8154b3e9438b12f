"""Speculative interaction: act while the user is still talking; unsafe tools wait.

Run: python examples/voice_agent.py
"""

import asyncio
import time

from langchain_core.tools import tool

from langgraph_speculative import label_tool
from langgraph_speculative.integrations import (
    LatencyModel,
    PlannedCall,
    ScriptedChatModel,
    ScriptedTask,
)
from langgraph_speculative.integrations.sim.scripted_listener import ListeningResponder
from langgraph_speculative.integrations.sim.speech import speech_updates
from langgraph_speculative.nodes import SpeculativeRun, create_speculative_agent


@tool
async def find_table(restaurant: str, people: int) -> str:
    """Check a restaurant's free tables."""
    await asyncio.sleep(0.2)
    return f"{restaurant}: a table for {people} at 19:30"


@tool
async def book_table(restaurant: str, people: int) -> str:
    """Book a table (a side effect)."""
    await asyncio.sleep(0.1)
    return f"booked {restaurant} for {people}"


label_tool(find_table, safe=True)  # read-only: may run on partial input
label_tool(book_table, safe=False)  # side effect: only after the commit point

FNS = tuple(
    {"name": n, "parameters": {"type": "object", "properties": {}}}
    for n in ("find_table", "book_table")
)
TASK = ScriptedTask(
    "dinner",
    "Find a table for 4 at Chez Panisse and book it for me",
    FNS,
    (
        PlannedCall("0", "find_table", {"restaurant": "Chez Panisse", "people": 4}),
        PlannedCall("1", "book_table", {"restaurant": "Chez Panisse", "people": 4}),
    ),
)


async def main() -> None:
    model = ScriptedChatModel(
        script=ListeningResponder(TASK, premature=0.0),
        latency=LatencyModel(ttft_ms=100, tpot_ms=4),
        backend="interruptible",
    )
    tools = [find_table, book_table]
    graph = create_speculative_agent().compile()
    async with SpeculativeRun(model, tools) as run:

        async def user() -> float:  # an ASR pushing partial transcripts, then the final one
            start = time.perf_counter()
            for update in speech_updates(TASK.question, wpm=300):
                await asyncio.sleep(max(0.0, start + update.at_s - time.perf_counter()))
                run.input.push(update.text, final=update.final)
            return time.perf_counter()

        speaking = asyncio.create_task(user())
        out = await graph.ainvoke({"messages": []}, context=run)  # type: ignore[call-overload]
        last_word = await speaking
        answered = time.perf_counter()
    print(f"answer: {out['messages'][-1].content}")
    print(f"answered {1e3 * (answered - last_word):.0f} ms after the user's last word")
    print(f"speculation: {run.stats}")
    booked = run.ledger.get(run.speculation.final_records()["c1"])
    assert run.commit_at is not None and booked.started_at is not None
    assert booked.started_at >= run.commit_at, "the unsafe booking ran before the commit point"
    print("the booking started only after the commit point")


if __name__ == "__main__":
    asyncio.run(main())

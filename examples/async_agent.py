"""Asynchronous function calling: stock create_agent vs create_async_agent, side by side.

Run: python examples/async_agent.py
"""

import asyncio
import time

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from langgraph_speculative.integrations import (
    LatencyModel,
    PlannedCall,
    ScriptedChatModel,
    ScriptedTask,
    TaskResponder,
)
from langgraph_speculative.nodes import create_async_agent


@tool
async def get_weather(city: str) -> str:
    """Current weather of a city."""
    await asyncio.sleep(0.3 if city == "Tokyo" else 0.1)
    return f"sunny in {city}"


FN = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}
TASK = ScriptedTask(
    "weather",
    "Weather in Paris, Tokyo and Lima?",
    (FN,),
    tuple(
        PlannedCall(str(i), "get_weather", {"city": c})
        for i, c in enumerate(["Paris", "Tokyo", "Lima"])
    ),
)
LATENCY = LatencyModel(ttft_ms=150, tpot_ms=5)


async def timed(agent: object) -> float:
    start = time.perf_counter()
    out = await agent.ainvoke({"messages": [HumanMessage(TASK.question)]})  # type: ignore[attr-defined]
    assert out["messages"][-1].content == TASK.final_answer()
    return (time.perf_counter() - start) * 1e3


async def main() -> None:
    def model(policy: str, backend: str = "stateless") -> ScriptedChatModel:
        return ScriptedChatModel(
            script=TaskResponder(TASK, policy=policy),
            latency=LATENCY,
            backend=backend,  # type: ignore[arg-type]
        )

    stock = await timed(create_agent(model("parallel"), [get_weather]))
    stateless = await timed(create_async_agent(model("async"), [get_weather]).compile())
    session = await timed(
        create_async_agent(model("async", "interruptible"), [get_weather]).compile()
    )
    print(f"stock create_agent (parallel tools): {stock:6.0f} ms")
    print(f"create_async_agent, stateless:       {stateless:6.0f} ms  ({stock / stateless:.2f}x)")
    print(f"create_async_agent, interruptible:   {session:6.0f} ms  ({stock / session:.2f}x)")


if __name__ == "__main__":
    asyncio.run(main())

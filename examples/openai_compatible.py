"""The async node with the real ChatOpenAI client against an OpenAI-compatible server.

Here the server is the project's simulated one (offline); point ``base_url`` at any
OpenAI-compatible endpoint to use a real model.

Run: python examples/openai_compatible.py
"""

import asyncio

from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from langgraph_speculative.integrations import LatencyModel, PlannedCall, ScriptedTask
from langgraph_speculative.integrations.sim.server import SimServer
from langgraph_speculative.integrations.sim.tools import make_simulated_tools
from langgraph_speculative.nodes import create_async_agent

FN = {
    "name": "get_stock_price",
    "description": "Latest price of a stock.",
    "parameters": {
        "type": "dict",
        "properties": {"ticker": {"type": "string"}},
        "required": ["ticker"],
    },
}
TASK = ScriptedTask(
    "stocks",
    "Prices of AAPL and MSFT?",
    (FN,),
    (
        PlannedCall("0", "get_stock_price", {"ticker": "AAPL"}),
        PlannedCall("1", "get_stock_price", {"ticker": "MSFT"}),
    ),
)


def main() -> None:
    latency = LatencyModel(ttft_ms=50, tpot_ms=2, tool_lo_ms=20, tool_hi_ms=80)
    with SimServer(tasks=[TASK], latency=latency) as server:
        model = ChatOpenAI(base_url=server.base_url, api_key="sim", model="async/stocks")  # type: ignore[arg-type]
        agent = create_async_agent(
            model, make_simulated_tools(TASK.functions, latency=latency)
        ).compile()
        out = asyncio.run(agent.ainvoke({"messages": [HumanMessage(TASK.question)]}))
    for message in out["messages"]:
        print(f"{type(message).__name__:>13}: {str(message.content)[:70] or message.tool_calls}")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()

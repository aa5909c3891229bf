"""Breakpoints: pause firings before they run, look at their input, then resume, fix or skip.

Two ways, both non-interactive: a callback (``on_break``) that decides, and a coroutine that
awaits the hit while the run goes on. Run: python examples/breakpoints.py
"""

import asyncio

from mpipe import BreakpointHit, ExecutionError, GraphExecutor, create_simple_pipeline


def invert(x: float) -> float:
    return 1 / x


graph = create_simple_pipeline([("clean", lambda x: x), ("invert", invert)], graph_id="inv")


# 1. A callback decides: skip zeros, replace negatives by their absolute value.
def decide(hit: BreakpointHit) -> str | None:
    value = hit.input["input"]
    print(f"  paused {hit.processor_id} #{hit.index} on {value!r}")
    if value == 0:
        return "skip"  # the firing never runs and produces nothing
    hit.replace_input({"input": abs(value)})
    return "resume"


executor = GraphExecutor(graph, on_break=decide)
executor.set_breakpoint("invert", condition=lambda data: data["input"] <= 0)
print("with on_break:")
print(" ", asyncio.run(executor.execute_stream({"clean": [4, 0, -2, 5]})))


# 2. Await the hit: the caller inspects the paused firing while the run waits for it.
async def debug_session() -> None:
    ex = GraphExecutor(graph)
    ex.set_breakpoint("invert")  # every firing of "invert"
    run = asyncio.create_task(ex.execute(8))
    hit = await ex.wait_for_break(timeout=10)
    print(f"  paused {hit.processor_id} on {hit.input}; breakpoints: {len(ex.list_breakpoints())}")
    hit.resume()
    print("  result:", await run)

    # step(): pause the very next firing of any processor, once; abort ends the run.
    ex.remove_breakpoint(ex.list_breakpoints()[0]["breakpoint_id"])
    ex.step()
    run = asyncio.create_task(ex.execute(2))
    hit = await ex.wait_for_break(timeout=10)
    print(f"  stepped into {hit.processor_id} #{hit.index}; aborting")
    hit.abort("stopped by the example")
    try:
        await run
    except ExecutionError as exc:
        print("  run ended:", exc)


print("awaiting the hit:")
asyncio.run(debug_session())

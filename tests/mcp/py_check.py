"""Drive `apimedic mcp` with the official Python MCP SDK (PyPI `mcp`).

Usage: py_check.py stdio APIMEDIC_EXE DATA_DIR | py_check.py http URL
Runs the modern lifecycle (mode="auto": server/discover when offered) and the
legacy initialize, lists the tools, calls a few, checks a bad argument comes
back as isError and an unknown tool as an error. Exits non-zero on any miss.
"""

import asyncio
import sys

from mcp import Client, StdioServerParameters


def target():
    if sys.argv[1] == "stdio":
        return StdioServerParameters(command=sys.argv[2], args=["mcp", sys.argv[3]])
    return sys.argv[2]


async def check(mode):
    async with Client(target(), mode=mode) as client:
        info = client.server_info
        assert info is None or info.name == "apimedic", info
        tools = (await client.list_tools()).tools
        names = {t.name for t in tools}
        for want in ("summary", "findings", "backend_map", "failure_rate", "recent_changes"):
            assert want in names, (want, names)
        for t in tools:
            assert t.annotations is not None and t.annotations.read_only_hint is True, t.name
        r = await client.call_tool("summary", {})
        assert not r.is_error, r
        assert r.structured_content and r.structured_content["tool"] == "summary", r
        r = await client.call_tool("failure_rate", {"api": "no-such-api-at-all"})
        assert r.is_error, r
        assert "no API named" in r.content[0].text, r.content
        r = await client.call_tool("findings", {"severity": 3})
        assert r.is_error and "unknown argument" in r.content[0].text, r.content
        try:
            r = await client.call_tool("apply_remediation", {})
            assert r.is_error, r
        except Exception:
            pass  # a protocol error is also a refusal
        print(f"{mode}: {len(tools)} tools ok")


async def main():
    for mode in ("auto", "legacy"):
        await check(mode)


asyncio.run(main())

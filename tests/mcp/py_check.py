"""Drive `apimedic mcp` with the official Python MCP SDK (PyPI `mcp`).

Usage: py_check.py stdio APIMEDIC_EXE DATA_DIR | py_check.py http URL
Runs the modern lifecycle (mode="auto": server/discover when offered) and the
legacy initialize, lists the tools, calls every one of them (the SDK checks
each result's structuredContent against the tool's outputSchema and raises on
a mismatch; every tool must declare one, specific to it), checks the SDK's
check does reject a result that strays from the schema, that a bad argument
comes back as isError and an unknown tool as an error. Exits non-zero on any
miss.
"""

import asyncio
import copy
import sys

from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult


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
        for t in tools:
            schema = t.output_schema
            assert schema and schema["properties"]["tool"]["const"] == t.name, (t.name, schema)
        r = await client.call_tool("summary", {})
        assert not r.is_error, r
        assert r.structured_content and r.structured_content["tool"] == "summary", r
        summary = r.structured_content
        api = (await client.call_tool("list_apis", {})).structured_content["data"][0]["id"]
        finding = (await client.call_tool("findings", {})).structured_content["data"][0]["id"]
        calls = {
            "summary": {},
            "list_apis": {},
            "list_operations": {"api": api},
            "list_products": {},
            "list_backends": {},
            "failure_rate": {"api": api, "period": "24h"},
            "failure_log": {"limit": 20},
            "recent_changes": {"limit": 40},
            "backend_map": {},
            "backend_health": {},
            "policies": {"api": api},
            "nsg_rules": {},
            "network_check": {"destination": "Storage", "port": 443},
            "capacity": {},
            "findings": {},
            "explain": {"id": finding},
            "proposals": {},
        }
        assert set(calls) == names, ("call every tool", names ^ set(calls))
        for name, args in calls.items():
            # Raises RuntimeError when structuredContent does not match outputSchema.
            r = await client.call_tool(name, args)
            assert not r.is_error, (name, r.content)
            assert r.structured_content["tool"] == name, name
        # The SDK's check rejects output that strays from the schema.
        strayed = copy.deepcopy(summary)
        strayed["data"]["undeclared"] = 1
        for bad in (strayed, {**summary, "tool": "capacity"}):
            try:
                await client.session.validate_tool_result(
                    "summary", CallToolResult(content=[], structured_content=bad)
                )
            except RuntimeError as e:
                assert "Invalid structured content" in str(e), e
            else:
                raise AssertionError("a result off its outputSchema passed")
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
        print(f"{mode}: {len(tools)} tools called, each result valid against its outputSchema")


async def main():
    for mode in ("auto", "legacy"):
        await check(mode)


asyncio.run(main())

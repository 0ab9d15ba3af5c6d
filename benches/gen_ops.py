#!/usr/bin/env python3
"""Gateway log rows with many distinct operations: OPS operations (spread
over 50 APIs and 200 backends), ROWS_PER_OP rows each, over one hour.

    gen_ops.py OPS ROWS_PER_OP OUT.ndjson

Log Analytics NDJSON rows (ApiManagementGatewayLogs columns). Deterministic;
standard library only. For the operation-count sweep of benches/logs.sh.
"""
import json
import random
import sys

ops, per_op, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(7)
with open(out, "w") as f:
    for i in range(ops):
        api = f"api-{i % 50}"
        backend = f"backend-{i % 200}.internal"
        for j in range(per_op):
            sec = rng.randrange(3600)
            code = 500 if rng.random() < 0.02 else 200
            f.write(json.dumps({
                "TimeGenerated": f"2026-03-02T10:{sec // 60:02d}:{sec % 60:02d}.000Z",
                "ApiId": api,
                "OperationId": f"op-{i}",
                "Method": "GET",
                "Url": f"https://gw.example.net/{api}/op-{i}/{j}",
                "ResponseCode": code,
                "BackendResponseCode": code,
                "TotalTime": rng.randrange(5, 900),
                "BackendTime": rng.randrange(3, 800),
                "BackendUrl": f"https://{backend}/op-{i}/{j}",
                "LastErrorReason": "",
                "IsRequestSuccess": code < 400,
            }) + "\n")

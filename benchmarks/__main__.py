"""`python -m benchmarks [workload ...]`: run the workloads against fresh server processes, print a table."""

from __future__ import annotations

import sys
from collections.abc import Callable

from benchmarks import (
    auth,
    conditional,
    confidential,
    decide,
    export,
    floor,
    gate,
    ingest,
    invariants,
    labels,
    rest,
    search,
    stored_refs,
    subscriptions,
    validate,
)
from benchmarks.server import running_server
from benchmarks.stats import Row, print_table

# search and decide each load 100,000 Consents first (a few minutes each on 2 cores).
WORKLOADS: dict[str, Callable[[str], list[Row]]] = {
    "rest": rest.run, "ingest": ingest.run, "search": search.run, "decide": decide.run, "validate": validate.run,
    "auth": auth.run, "labels": labels.run, "export": export.run, "confidential": confidential.run,
    "gate": gate.run, "stored_refs": stored_refs.run, "subscriptions": subscriptions.run,
    "invariants": invariants.run, "conditional": conditional.run, "floor": floor.run,
}


def main(names: list[str]) -> int:
    rows: list[Row] = []
    for name in names or list(WORKLOADS):
        with running_server() as base:
            print(f"running {name} …", file=sys.stderr, flush=True)
            rows += WORKLOADS[name](base)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

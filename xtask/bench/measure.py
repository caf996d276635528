"""Runs one command and reports its wall time and peak memory, for
`cargo xtask bench score`: `python measure.py OUT -- CMD ARGS...` writes the
command's standard output to OUT and prints one JSON line with `seconds`,
`max_rss_kib` (the child's peak resident set, from getrusage) and `status`.
A wrapper process, so that the figure is this child's alone."""

import json
import resource
import subprocess
import sys
import time

out, cmd = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
with open(out, "wb") as f:
    start = time.perf_counter()
    status = subprocess.run(cmd, stdout=f).returncode
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds,
                  "max_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "status": status}))

#!/usr/bin/env python3
"""Runs a command and reports its wall time and peak memory, with anonymous
and file-backed memory apart:

    peak_mem.py CMD [ARGS...]
    -> wall_s maxrss_mb peak_anon_mb peak_file_mb exit_code cpu_s   (one line, stderr of CMD passed through)

maxrss is the kernel's ru_maxrss of the child (what /usr/bin/time %M
reports); peak_anon and peak_file are the highest RssAnon and RssFile seen in
/proc/PID/status, sampled every 5 ms (a memory-mapped input file counts in
RssFile). cpu_s is the child's user + system CPU time (what it computed
itself, apart from time spent waiting on a server). Standard library only.
"""

import os
import subprocess
import sys
import time


def sample(pid):
    anon = file = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    anon = int(line.split()[1])
                elif line.startswith("RssFile:"):
                    file = int(line.split()[1])
    except OSError:
        pass
    return anon, file


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    start = time.monotonic()
    p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
    peak_anon = peak_file = 0
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        anon, file = sample(p.pid)
        peak_anon, peak_file = max(peak_anon, anon), max(peak_file, file)
        time.sleep(0.005)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    print(f"{wall:.2f} {usage.ru_maxrss / 1024:.0f} {peak_anon / 1024:.0f} {peak_file / 1024:.0f} {code} {cpu:.2f}")


if __name__ == "__main__":
    main()

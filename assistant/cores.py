"""Core counts: the cores this process may use (logical, physical), and how many the next answer
can have: the CPU time other processes are taking, measured.

Two cores cannot serve llama.cpp's threads and a busy process at once: a thread that
shares its core with a browser tab or a build runs at half speed, and every other thread
waits for it at each barrier, so two threads beside one busy core read a prompt slower
than one thread alone (`bench/contention.py`, docs/benchmarks.md "Busy machines").
``FreeCores`` samples ``/proc/stat`` (all processes) and this process's own CPU time
every ``PERIOD_S`` in a daemon thread; ``free()`` is the cores the other processes left
idle over the last samples, rounded to the nearest. This process's own work (the search
before the answer, an ingest it holds back while answering) is not counted against it.

Linux only: elsewhere (no ``/proc/stat``) ``free()`` is None and the caller keeps its count.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path

__all__ = ["FreeCores", "physical_cores", "usable_cores"]


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def physical_cores() -> int:
    """Physical cores this process may run on (logical CPUs when topology is unknown)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for c in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{c}/topology")
        try:
            cores.add((topo.joinpath("physical_package_id").read_text().strip(), topo.joinpath("core_id").read_text().strip()))
        except OSError:
            return max(1, len(cpus))
    return max(1, len(cores))


def _busy_seconds() -> float | None:
    """CPU seconds spent busy by every process on every core since boot, from ``/proc/stat``."""
    try:
        with open("/proc/stat", "rb") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if len(fields) < 8 or fields[0] != b"cpu":
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user and nice]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    steal = int(fields[8]) if len(fields) > 8 else 0
    return (user + nice + system + irq + softirq + steal) / _TICKS


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class FreeCores:
    """Samples in a daemon thread once ``start()`` is called; cheap (two small reads per sample)."""

    PERIOD_S = 0.25
    WINDOW = 4  # samples kept: the last ~0.75 s are measured

    def __init__(self) -> None:
        self.cores = usable_cores()
        self._samples: deque[tuple[float, float, float]] = deque(maxlen=self.WINDOW)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.supported = _busy_seconds() is not None

    def start(self) -> None:
        if self._thread is None and self.supported:
            self._sample()
            self._thread = threading.Thread(target=self._run, name="free-cores", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.PERIOD_S)
            self._sample()

    def _sample(self) -> None:
        busy = _busy_seconds()
        if busy is None:
            return
        own = time.process_time()  # this process, all its threads
        with self._lock:
            self._samples.append((time.monotonic(), busy, own))

    def others(self) -> float | None:
        """Cores kept busy by other processes over the last samples (None: not measured yet)."""
        self._sample()
        with self._lock:
            if len(self._samples) < 2:
                return None
            (t0, b0, o0), (t1, b1, o1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 0.1:
            return None
        return max(0.0, ((b1 - b0) - (o1 - o0)) / (t1 - t0))

    def free(self, most: int) -> int | None:
        """Threads for work that wants ``most``: the cores the others leave free, 1 at least;
        None when it cannot be measured here."""
        others = self.others()
        if others is None:
            return None
        return max(1, min(most, int(self.cores - others + 0.5)))

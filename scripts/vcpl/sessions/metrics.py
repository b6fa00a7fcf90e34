"""The reference client's series of the alert contract (vcpl.alerts.GATEWAY_METRICS), recorded with
the time they changed so a rehearsal can be replayed into `promtool test rules`."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from vcpl.alerts import GATEWAY_METRICS


@dataclass
class Recorder:
    venue: str
    env: str
    start: float = field(default_factory=time.monotonic)
    # (seconds since start, metric, sorted label items, value)
    samples: list[tuple[float, str, tuple[tuple[str, str], ...], float]] = field(default_factory=list)
    _values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _key(self, name: str, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
        if name not in GATEWAY_METRICS:
            raise KeyError(f"{name} is not in the gateway's metric contract (vcpl.alerts.GATEWAY_METRICS)")
        return name, tuple(sorted({"venue": self.venue, "environment": self.env, **labels}.items()))

    def set(self, name: str, value: float, **labels: str) -> None:
        key = self._key(name, labels)
        with self._lock:
            self._values[key] = value
            self.samples.append((time.monotonic() - self.start, key[0], key[1], value))

    def inc(self, name: str, by: float = 1, **labels: str) -> None:
        key = self._key(name, labels)
        with self._lock:
            value = self._values.get(key, 0) + by
            self._values[key] = value
            self.samples.append((time.monotonic() - self.start, key[0], key[1], value))

    def value(self, name: str, **labels: str) -> float | None:
        return self._values.get(self._key(name, labels))

    def exposition(self) -> str:
        """The current values in the Prometheus text format (what /metrics would serve)."""
        lines = []
        with self._lock:
            for (name, labels), value in sorted(self._values.items()):
                rendered = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{name}{{{rendered}}} {value:g}")
        return "\n".join(lines) + "\n"

"""Replay a session rehearsal's recorded metric series into `promtool test rules` against the alert
rules the same overlay renders.

The reference client records the alert contract's series (vcpl.alerts.GATEWAY_METRICS) each time a
value changes (`sandbox.Result.samples`: seconds since start, metric, sorted labels, value). This
module turns one overlay's samples into a promtool unit test whose rule_files are the overlay's
rendered PrometheusRule groups, whose input_series are the recorded series (exact names and label
sets), and whose expectations say what the scenario did: a session that was logged off must raise
VenueSessionDown, a lost feed line VenueFeedLineDown, a heartbeat timeout VenueHeartbeatTimeout...
and the same alerts must be quiet where the recording says nothing was wrong.

Time mapping (a rehearsal lasts seconds, the alerts' `for:` and range windows last minutes):
- Every recorded change of a state series (every metric but the last-packet timestamp) opens a
  PHASE. Phases keep the recorded order; phase i holds the state right after the i-th change.
  Before phase 0 comes a lead-in phase: counters at 0, gauges absent (nothing recorded yet). If
  the recording goes on after the last state change (packets only), one more phase holds the end.
- Each phase lasts HOLD = (longest `for:` of the asserted alerts) + 2 evaluation steps, in steps
  of STEP_SECONDS (30 s): the series' value is repeated at every step of the phase, so a state
  that held in the recording holds long enough in the replay for a rule's `for:` to elapse.
  The rehearsal's own clock is frozen inside a phase: replay time = start + (phase + 1) * HOLD.
- Expectations are checked at the last step of each phase (HOLD - 1 step after its start).
- Counters (GATEWAY_METRICS type "counter") are replayed from 0 at the start of the lead-in: a
  gateway exposes its counters from start-up, and Prometheus' increase() cannot see a first
  increment of a series that appears already at 1.
- vcpl_feed_last_packet_timestamp_seconds is a unix time, meaningless on the replay clock. Its
  recorded values are turned into AGES (seconds since the last packet, at the rehearsal instant of
  the phase; the rehearsal's wall-clock origin is the median of value - offset over its samples),
  and replayed as replay time - age at every step, so time() - value in PromQL is the age the
  client actually saw at that instant.
- start_timestamp is the first instant (from Monday 2026-11-16 00:00 UTC, in 15-minute steps)
  from which the run book's session window (schedule.is_open, the same truth tests/test_alerts.py
  holds the recording rule `vcpl:session_window:open` to) stays open for the whole replay, so
  window-gated alerts are evaluated inside the window.

Expectations are derived from the recorded values, per alert the overlay renders and whose metric
was recorded (no series recorded: nothing happened, nothing asserted):
- VenueSessionDown: firing for each service whose vcpl_session_logged_on is 0 in the phase, quiet
  for those at 1.
- VenueFeedLineDown: firing for each channel/line whose vcpl_feed_line_up is 0.
- VenueFeedBothLinesDown: firing for each channel whose recorded lines are all 0.
- VenueHeartbeatTimeout, VenueSequenceGap, VenueLogonRejected, VenueFeedGaps: firing for each
  series whose counter increased in the phase; quiet where no series increased in the phases a
  range window of the rule could still see; a phase where a series increased a short while before
  (still inside the window) is not asserted, as the answer would depend on PromQL's extrapolation.
- VenueFeedStale / VenueStreamStale: firing where the age of the channel's (stream's) last packet
  exceeded the run book's stale limit (vcpl.alerts.stale_after), quiet where it did not; ages
  within 1 s of the limit are not asserted.
Not asserted: rate-based VenueResendStorm (its rate depends on the stretched clock), the quota,
throttle, gateway, VPN, egress, certificate and clock alerts (no recorded series feed them).
"""
from __future__ import annotations

import datetime as dt
import math
import re
import statistics
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vcpl import alerts, render, runbook, schedule
from vcpl.errors import VcplError
from vcpl.sessions.site import Finding

STEP_SECONDS = 30
TIMESTAMP_METRIC = "vcpl_feed_last_packet_timestamp_seconds"
# Rehearsal-to-unix drift is well under a second; ages this close to the stale limit are not judged.
STALE_MARGIN_SECONDS = 1.0
SEARCH_FROM = dt.datetime(2026, 11, 16, tzinfo=dt.timezone.utc)  # a Monday, as tests/test_alerts.py
OVERLAY_LABELS = ("venue", "environment")

Labels = tuple[tuple[str, str], ...]
Sample = tuple[float, str, Labels, float]
SeriesKey = tuple[str, Labels]


@dataclass(frozen=True)
class Watch:
    """How a recorded metric shows in one alert: the label names the alert groups by (None: the
    series' own labels, as increase() keeps them) and what makes it fire."""

    metric: str
    kind: str                       # "zero" (gauge 0), "all-zero" (every line 0), "increase", "stale"
    by: tuple[str, ...] | None


# The alert contract as alerts.py writes it: which metric each alert reads and its output labels.
WATCHES: dict[str, Watch] = {
    "VenueSessionDown": Watch("vcpl_session_logged_on", "zero", ("venue", "environment", "service")),
    "VenueFeedLineDown": Watch("vcpl_feed_line_up", "zero", ("venue", "environment", "service", "channel", "line")),
    "VenueFeedBothLinesDown": Watch("vcpl_feed_line_up", "all-zero", ("venue", "environment", "service", "channel")),
    "VenueHeartbeatTimeout": Watch("vcpl_session_heartbeat_timeouts_total", "increase", None),
    "VenueSequenceGap": Watch("vcpl_session_sequence_gaps_total", "increase", None),
    "VenueLogonRejected": Watch("vcpl_session_logon_rejects_total", "increase", None),
    "VenueFeedGaps": Watch("vcpl_feed_gap_packets_total", "increase", ("venue", "environment", "service", "channel")),
    "VenueFeedStale": Watch(TIMESTAMP_METRIC, "stale", ("venue", "environment", "service", "channel")),
    "VenueStreamStale": Watch(TIMESTAMP_METRIC, "stale", ("venue", "environment", "service")),
}


@dataclass(frozen=True)
class Expectation:
    alert: str
    phase: int                       # -1: the lead-in
    eval_seconds: int                # after start_timestamp
    firing: tuple[Labels, ...]       # the alert's expression labels (rule labels added when written)
    cause: str                       # the recorded change that opened the phase


@dataclass
class Plan:
    venue: str
    env: str
    start_timestamp: int
    hold_steps: int
    phases: list[tuple[float, str]]              # (rehearsal seconds, what changed)
    expectations: list[Expectation]
    skipped: list[str]                           # rendered alerts not asserted, with the reason
    test: dict[str, Any] = field(default_factory=dict)

    def asserted(self, alert: str, firing: bool = True) -> list[Expectation]:
        return [e for e in self.expectations if e.alert == alert and bool(e.firing) == firing]


def _normalise(samples: Iterable[Sequence[Any]]) -> list[Sample]:
    """Samples as the Recorder holds them, also from JSON (lists instead of tuples)."""
    return [(float(t), str(n), tuple((str(k), str(v)) for k, v in labels), float(v)) for t, n, labels, v in samples]


def _alert_rules(rule_groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rule_groups for r in g.get("rules", []) if "alert" in r}


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd])", duration)
    if not match:
        raise VcplError(f"promreplay: cannot read the duration {duration!r}")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _window_seconds(expr: str) -> int:
    """The longest range selector of an expression: how far back a counter increase stays visible."""
    ranges = [_seconds(r) for r in re.findall(r"\[(\d+[smhd])\]", expr)]
    return max(ranges, default=5 * 60)


def _fmt(value: float) -> str:
    return format(value, ".15g")


def _labels_text(labels: Labels, drop: Sequence[str] = OVERLAY_LABELS) -> str:
    return "{" + ",".join(f"{k}={v}" for k, v in labels if k not in drop) + "}"


def _group(labels: Labels, by: tuple[str, ...] | None) -> Labels:
    if by is None:
        return labels
    return tuple(sorted((k, v) for k, v in labels if k in by))


def _expand(text: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)


def _open_start(sched: dict[str, Any], seconds: int) -> int | None:
    """The first instant from which the session window stays open for `seconds` (probed every 5
    minutes, with 10 minutes of margin either side)."""
    for quarter in range(7 * 24 * 4):
        moment = SEARCH_FROM + dt.timedelta(minutes=15 * quarter)
        probes = range(-10, seconds // 60 + 11, 5)
        if all(schedule.is_open(sched, moment + dt.timedelta(minutes=m)) for m in probes):
            return int(moment.timestamp())
    return None


def plan(venue: str, env: str, samples: Iterable[Sequence[Any]], rule_groups: list[dict[str, Any]],
         rb: runbook.Runbook | None = None, rules_file: str = "rules.yaml") -> Plan:
    """The promtool test for one overlay's recording (see the module docstring for the mapping)."""
    recorded = _normalise(samples)
    rb = rb or runbook.load_venue(venue)
    rules = _alert_rules(rule_groups)
    present = {n for _, n, _, _ in recorded}
    skipped = [f"{a}: not replayed (its rate or its inputs are not part of a rehearsal)" for a in sorted(rules) if a not in WATCHES]
    watched = {}
    for alert, watch in WATCHES.items():
        if alert not in rules:
            continue
        if watch.metric not in present:
            skipped.append(f"{alert}: not asserted, the rehearsal recorded no {watch.metric}")
            continue
        watched[alert] = watch

    # Phases: one per state change, after a lead-in; one more if packets kept arriving after the last.
    changes = [s for s in recorded if s[1] != TIMESTAMP_METRIC]
    phases: list[tuple[float, str]] = [(0.0, "lead-in: nothing recorded yet (counters at 0)")]
    phases += [(t, f"{t:.2f} s: {n}{_labels_text(lab)} = {_fmt(v)}") for t, n, lab, v in changes]
    last = max((s[0] for s in recorded), default=0.0)
    if last > phases[-1][0] or len(phases) == 1:
        phases.append((last, f"{last:.2f} s: end of the recording"))
    # State after phase i: changes[:i] applied (phase 0 is the lead-in, phase k applies changes[k-1]).
    longest_for = max((_seconds(rules[a].get("for", "0s")) for a in watched), default=0)
    hold = math.ceil(longest_for / STEP_SECONDS) + 2
    total_steps = hold * len(phases)
    start = _open_start(rb["schedule"], total_steps * STEP_SECONDS)
    if start is None:
        raise VcplError(f"{venue} {env}: the session window is never open for {total_steps * STEP_SECONDS // 60} minutes "
                        f"in a row: too many recorded changes ({len(changes)}) to replay at {hold} steps each")

    counters = {n for n, (kind, _) in alerts.GATEWAY_METRICS.items() if kind == "counter"}
    # Rehearsal wall-clock origin: the timestamp gauge holds time.time() at rehearsal offset t.
    stamps = [(t, v) for t, n, _, v in recorded if n == TIMESTAMP_METRIC]
    origin = statistics.median(v - t for t, v in stamps) if stamps else 0.0

    # Values per series and phase (None: absent).
    keys: list[SeriesKey] = []
    for _, n, lab, _ in recorded:
        if (n, lab) not in keys:
            keys.append((n, lab))
    state: dict[SeriesKey, float | None] = {k: (0.0 if k[0] in counters else None) for k in keys}
    per_phase: list[dict[SeriesKey, float | None]] = []   # gauges/counters: value; timestamps: age
    increased: list[set[SeriesKey]] = []
    last_packet: dict[SeriesKey, float] = {}               # rehearsal seconds of the last packet
    stamp_iter = iter(sorted(((t, n, lab, v) for t, n, lab, v in recorded if n == TIMESTAMP_METRIC), key=lambda s: s[0]))
    pending = next(stamp_iter, None)
    for index, (at, _) in enumerate(phases):
        grew: set[SeriesKey] = set()
        if index > 0 and index <= len(changes):
            _, n, lab, v = changes[index - 1]
            before = state[(n, lab)]
            if n in counters and v > (before or 0):
                grew.add((n, lab))
            state[(n, lab)] = v
        while pending is not None and pending[0] <= at and index > 0:
            last_packet[(pending[1], pending[2])] = pending[3] - origin
            pending = next(stamp_iter, None)
        snapshot: dict[SeriesKey, float | None] = dict(state)
        for key in keys:
            if key[0] == TIMESTAMP_METRIC:
                snapshot[key] = max(0.0, at - last_packet[key]) if key in last_packet else None
        per_phase.append(snapshot)
        increased.append(grew)

    def replay_time(step: int) -> int:
        return start + step * STEP_SECONDS

    input_series = []
    for key in keys:
        tokens = []
        for index, snapshot in enumerate(per_phase):
            value = snapshot[key]
            for step in range(index * hold, (index + 1) * hold):
                if value is None:
                    tokens.append("_")
                elif key[0] == TIMESTAMP_METRIC:
                    tokens.append(_fmt(replay_time(step) - value))   # value is the age here
                else:
                    tokens.append(_fmt(value))
        body = ",".join(f'{k}="{v}"' for k, v in key[1])
        input_series.append({"series": f"{key[0]}{{{body}}}", "values": " ".join(tokens)})

    stale = alerts.stale_after(rb)
    expectations: list[Expectation] = []
    for alert, watch in watched.items():
        rule = rules[alert]
        # Phases a counter increase stays visible in: the rule's range window plus one phase.
        reach = math.ceil((_window_seconds(rule["expr"]) + hold * STEP_SECONDS) / (hold * STEP_SECONDS))
        for index, snapshot in enumerate(per_phase):
            series = {k: v for k, v in snapshot.items() if k[0] == watch.metric and v is not None}
            # Groups not in `firing` are asserted quiet: promtool compares the whole set.
            firing: set[Labels] = set()
            if watch.kind == "zero":
                groups: dict[Labels, list[float]] = {}
                for (_, lab), value in series.items():
                    groups.setdefault(_group(lab, watch.by), []).append(value)
                firing = {g for g, values in groups.items() if max(values) == 0}
            elif watch.kind == "all-zero":
                groups = {}
                for (_, lab), value in series.items():
                    groups.setdefault(_group(lab, watch.by), []).append(value)
                firing = {g for g, values in groups.items() if all(v == 0 for v in values)}
            elif watch.kind == "increase":
                recent = set().union(*increased[max(0, index - reach + 1):index + 1])
                ambiguous = False
                for key in series:
                    group = _group(key[1], watch.by)
                    if key in increased[index]:
                        firing.add(group)
                    elif key in recent:
                        ambiguous = True
                if ambiguous:
                    continue
            elif watch.kind == "stale":
                # A stream alert groups without channel; the feed alert only sees channelled series.
                groups = {}
                for (_, lab), age in series.items():
                    has_channel = any(k == "channel" for k, _ in lab)
                    if alert == "VenueStreamStale" and has_channel:
                        continue
                    groups.setdefault(_group(lab, watch.by), []).append(age)  # type: ignore[arg-type]
                ages = {g: min(values) for g, values in groups.items()}
                if any(abs(a - stale) < STALE_MARGIN_SECONDS for a in ages.values()):
                    continue
                firing = {g for g, a in ages.items() if a > stale}
            expectations.append(Expectation(alert, index - 1, (index * hold + hold - 1) * STEP_SECONDS,
                                            tuple(sorted(firing)), phases[index][1]))

    tests = []
    for exp in expectations:
        rule = rules[exp.alert]
        exp_alerts = []
        for labels in exp.firing:
            all_labels = {**dict(labels), **rule.get("labels", {})}
            exp_alerts.append({"exp_labels": all_labels,
                               "exp_annotations": {k: _expand(v, all_labels) for k, v in rule.get("annotations", {}).items()}})
        tests.append({"eval_time": f"{exp.eval_seconds}s", "alertname": exp.alert, "exp_alerts": exp_alerts})
    test = {
        "rule_files": [rules_file],
        "evaluation_interval": f"{STEP_SECONDS}s",
        "tests": [{"interval": f"{STEP_SECONDS}s", "start_timestamp": start, "input_series": input_series, "alert_rule_test": tests}],
    }
    return Plan(venue, env, start, hold, phases, expectations, skipped, test)


def describe(p: Plan) -> str:
    """What the replay asserts, one line per alert and phase where something fires."""
    lines = [f"{p.venue} {p.env}: {len(p.phases)} phases of {p.hold_steps} x {STEP_SECONDS}s from "
             f"{dt.datetime.fromtimestamp(p.start_timestamp, dt.timezone.utc):%Y-%m-%d %H:%M} UTC (session window open)"]
    counts: dict[str, list[int]] = {}
    for e in p.expectations:
        counts.setdefault(e.alert, [0, 0])[0 if e.firing else 1] += 1
    for alert, (fire, quiet) in sorted(counts.items()):
        lines.append(f"  {alert}: firing asserted at {fire} instants, quiet at {quiet}")
    for e in p.expectations:
        if e.firing:
            lines.append(f"  {e.eval_seconds}s {e.alert} firing {', '.join(_labels_text(l) for l in e.firing)} <- {e.cause}")
    lines += [f"  {s}" for s in p.skipped]
    return "\n".join(lines)


def replay(venue: str, env: str, samples: Iterable[Sequence[Any]], rule_groups: list[dict[str, Any]],
           rb: runbook.Runbook | None = None) -> tuple[bool, str]:
    """Run the real `promtool test rules` on the replay; (passed, what was asserted + promtool's output)."""
    p = plan(venue, env, samples, rule_groups, rb)
    if not p.expectations:
        return True, describe(p) + "\n  (nothing to assert: no recorded series feeds a rendered alert)"
    promtool = render.tool("promtool")
    with tempfile.TemporaryDirectory(prefix=f"vcpl-promreplay-{venue}-{env}-") as tmp:
        (Path(tmp) / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups}, sort_keys=False))
        (Path(tmp) / "replay.yaml").write_text(yaml.safe_dump(p.test, sort_keys=False))
        checked = subprocess.run([promtool, "test", "rules", "replay.yaml"], capture_output=True, text=True, cwd=tmp)
    output = (checked.stdout + checked.stderr).strip()
    report = f"{describe(p)}\npromtool test rules (exit {checked.returncode}):\n{output}"
    if checked.returncode != 0:
        report = f"{failures(p, output)}\n{report}"
    return checked.returncode == 0, report


def _prom_duration(seconds: int) -> str:
    """A duration as promtool prints eval times (Prometheus model.Duration: 1h2m30s, 0s)."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def failures(p: Plan, output: str) -> str:
    """promtool's failed assertions in rehearsal terms: which alert, when, what the recording said."""
    by_time = {(e.alert, _prom_duration(e.eval_seconds)): e for e in p.expectations}
    lines = []
    for alert, when in re.findall(r"alertname: (\w+), time: (\S+?),", output):
        e = by_time.get((alert, when))
        if e is None:
            lines.append(f"FAILED {alert} at {when}")
            continue
        wanted = ("firing " + ", ".join(_labels_text(l) for l in e.firing)) if e.firing else "quiet"
        lines.append(f"FAILED {alert} at {when}: expected {wanted} after {e.cause}")
    if not lines:
        lines.append("FAILED promtool could not run the replay (see its output below)")
    return "\n".join(lines)


def rendered_rule_groups(venue: str, env: str, overlay: Path | None = None) -> list[dict[str, Any]]:
    """The PrometheusRule groups overlays/<env>/<venue> (or a given kustomization) renders."""
    text = render.build_dir(overlay) if overlay else render.build(env, venue)
    return [g for d in yaml.safe_load_all(text) if d and d.get("kind") == "PrometheusRule" for g in d["spec"]["groups"]]


def findings(result: Any, overlay: Path | None = None) -> list[Finding]:
    """For `vcpl rehearse-sessions`: one Finding per rehearsed overlay (a sandbox.Result), none when
    the rehearsal recorded no series. Field names the rendered PrometheusRule; on failure the detail
    carries promtool's own output."""
    if not result.samples:
        return []
    where = f"PrometheusRule vcpl-{result.venue}-{result.env} (alert replay)"
    try:
        ok, report = replay(result.venue, result.env, result.samples, rendered_rule_groups(result.venue, result.env, overlay))
    except VcplError as exc:
        return [Finding(result.venue, result.env, "", "alert-replay", where, False, str(exc))]
    if ok:
        summary = "; ".join(line.strip() for line in report.splitlines()[1:] if "asserted at" in line)
        return [Finding(result.venue, result.env, "", "alert-replay", where, True, f"promtool passes the recorded series: {summary}")]
    # Each failed alert with its instant and recorded cause, then promtool's own output.
    named = [line for line in report.splitlines() if line.startswith("FAILED ")]
    detail = "\n".join(named) + "\n" + report[report.find("promtool test rules"):][:3000]
    return [Finding(result.venue, result.env, "", "alert-replay", where, False, detail)]

"""The alarm benchmark's tables, computed from its raw results alone (`bench_alarms.py --report` writes them into docs/).

Every number is recomputed from the committed raw-results file: the ground truth of each run,
each detector's alarms (the monitor's replayed over the run's lines), and their scores.
"""

import math

from _detection import DETECTORS, NAMES, TOLERANCE_IMAGES, monitor_alarms, summary
from trainers.report import Run
from trainers.verdict import verdict

SPLITS = ("held-out", "development", "healthy (held-out)", "healthy (development)")
"""The parts of the benchmark, in the order of the tables."""

SPLIT_TITLES = {"held-out": "held-out causes", "development": "development causes",
                "healthy (held-out)": "healthy runs, seeds 5-9", "healthy (development)": "healthy runs, seeds 0-4"}

TARGET_DETECTION = 0.8
TARGET_NAMES = 0.8


def scored(records, outcomes_of, failure_of):
    """[(record, failure, {detector: outcome})] of every run."""
    return [(record, failure_of(record), outcomes_of(record)) for record in records]


def summary_table(runs):
    """Per split and detector: runs, failed, detected, named, median delay, false alarms."""
    rows = ["| part | detector | runs | failed | detected | name right | median delay [90% interval] | "
            "false alarms (runs with one) | per 1,000 steps |", "|---|---|---|---|---|---|---|---|---|"]
    for split in SPLITS:
        part = [run for run in runs if run[0]["split"] == split]
        if not part:
            continue
        for detector in DETECTORS:
            numbers = summary([outcomes[detector] for _, _, outcomes in part])
            rows.append(f"| {SPLIT_TITLES[split]} | {detector} | {numbers['runs']} | {numbers['failed']} | "
                        f"{_count(numbers['detected'], numbers['failed'])} | {_count(numbers['named'], numbers['detected'])} | "
                        f"{_delay(numbers['median delay'])} [{_delay(numbers['delay 90% interval'][0])}, "
                        f"{_delay(numbers['delay 90% interval'][1])}] | {numbers['false alarms']} "
                        f"({numbers['runs with a false alarm']}) | {_rate(numbers['false alarms per 1000 steps'])} |")
    return "\n".join(rows)


def cause_table(runs):
    """Per cause: what failed and what the samples showed; the monitor's detections, names, delays and false alarms."""
    rows = ["| cause | part | kind | failed | the samples show | monitor: detected | name right | delays | false alarms | "
            "best baseline detected (not the trivial one) |", "|---|---|---|---|---|---|---|---|---|---|"]
    causes = []
    for record, _, _ in runs:
        if record["case"] not in causes:
            causes.append(record["case"])
    for cause in causes:
        part = [run for run in runs if run[0]["case"] == cause]
        record = part[0][0]
        monitor = summary([outcomes["monitor"] for _, _, outcomes in part])
        shown = sorted({state for _, failure, _ in part if failure for state in failure.states})
        baselines = [detector for detector in DETECTORS if detector != "monitor" and not detector.startswith("trivial")]
        best = max(baselines, key=lambda name: summary([outcomes[name] for _, _, outcomes in part])["detected"])
        best_count = summary([outcomes[best] for _, _, outcomes in part])["detected"]
        delays = ", ".join(_delay(outcomes["monitor"].delay) for _, failure, outcomes in part if failure) or "-"
        rows.append(f"| {record['description']} | {record['split']} | {record['kind']} | "
                    f"{monitor['failed']} of {monitor['runs']} | {', '.join(shown) or '-'} | "
                    f"{_count(monitor['detected'], monitor['failed'])} | {_count(monitor['named'], monitor['detected'])} | "
                    f"{delays} | {monitor['false alarms']} | "
                    f"{_count(best_count, monitor['failed']) + (f' ({best})' if best_count else '')} |")
    return "\n".join(rows)


def targets(runs):
    """[(target, measured, met)] of the success rule, on the held-out causes and the held-out healthy runs;
    ``met`` is None while none of those has run."""
    held_out = [run for run in runs if run[0]["split"] == "held-out"]
    healthy = [run for run in runs if run[0]["split"] == "healthy (held-out)"]
    ours = summary([outcomes["monitor"] for _, _, outcomes in held_out])
    baselines = {name: summary([outcomes[name] for _, _, outcomes in held_out])["median delay"]
                 for name in DETECTORS if name not in ("monitor",) and not name.startswith("trivial")}
    best = min(baselines, key=lambda name: math.inf if baselines[name] is None else baselines[name]) if baselines else None
    calm = [outcomes["monitor"] for _, failure, outcomes in healthy if failure is None]  # healthy by the truth too
    false_alarms = sum(len(result.false_alarms) for result in calm)
    everywhere = summary([outcomes["monitor"] for _, _, outcomes in runs])
    detection = ours["detected"] / ours["failed"] if ours["failed"] else math.nan
    naming = ours["named"] / ours["detected"] if ours["detected"] else math.nan
    ours_median, best_median = ours["median delay"], baselines.get(best)
    rows = [
        (f">= {TARGET_DETECTION:.0%} of the failed held-out runs detected within {TOLERANCE_IMAGES:,} images of the onset",
         f"{ours['detected']} of {ours['failed']} ({_percent(detection)})", detection >= TARGET_DETECTION),
        (f"the alarm's name right in >= {TARGET_NAMES:.0%} of those", f"{ours['named']} of {ours['detected']} ({_percent(naming)})",
         naming >= TARGET_NAMES),
        ("0 false alarms on the held-out healthy runs (>= 10 of them that did not fail)",
         f"{false_alarms} on the {len(calm)} that did not fail ({len(healthy) - len(calm)} of the {len(healthy)} failed by "
         f"themselves: scored as failures); over every non-failing stretch of every run, "
         f"{_rate(everywhere['false alarms per 1000 steps'])} per 1,000 generator steps",
         false_alarms == 0 and len(calm) >= 10),
        ("median clipped delay on held-out failures no later than the best baseline's",
         f"monitor {_delay(ours_median)}, best baseline ({best}) {_delay(best_median)}",
         ours_median is not None and best_median is not None and ours_median <= best_median),
    ]
    if not held_out or not healthy:
        return [(target, "not run yet", None) for target, _, _ in rows]
    return rows


def targets_table(runs):
    rows = ["| target | measured | met |", "|---|---|---|"]
    rows += [f"| {target} | {measured} | {'-' if met is None else 'yes' if met else '**no**'} |"
             for target, measured, met in targets(runs)]
    return "\n".join(rows)


def runs_table(runs, passing_of):
    """One row per run: its ground truth (failure, passing failures) and every detector's alarms."""
    rows = ["| run | part | ground truth | passing failures | monitor's alarms | baselines' alarms |", "|---|---|---|---|---|---|"]
    for record, failure, outcomes in runs:
        truth = "did not fail" if failure is None else f"failed at {_images(failure.images)}: {', '.join(failure.states)}"
        passing = ", ".join(f"{_images(start)}–{_images(end)}" for start, end in passing_of(record)) or "-"
        ours = _alarms(outcomes["monitor"])
        theirs = "; ".join(f"{name}: {_alarms(result)}" for name, result in outcomes.items()
                           if name != "monitor" and not name.startswith("trivial") and _alarms(result) != "none")
        rows.append(f"| {record['name']} | {record['split']} | {truth} | {passing} | {ours} | {theirs or 'none'} |")
    return "\n".join(rows)


def _alarms(result):
    alarms = sorted([*result.false_alarms, *([result.detection] if result.detection else [])], key=lambda a: a.images)
    shown = []
    for alarm in alarms:
        verdict = "false" if alarm in result.false_alarms else "right name" if result.named else "wrong name"
        shown.append(f"{alarm.name} at {_images(alarm.images)} ({verdict})")
    return ", ".join(shown) or "none"


def false_alarm_table(runs, states_at):
    """Where the monitor's false alarms fell: the ground truth's states at the evaluation each fired at.

    ``states_at(record)`` gives {images seen: set of states} of a run's evaluations. An alarm that
    names a state the samples were in then (a passing failure, or one before the onset window of
    a failure) was right at the time and still counts as false by the fixed scoring.
    """
    kinds = {"named a state the samples were in then": 0, "in a state it does not name": 0,
             "while the samples were in no failing state": 0}
    for record, _, outcomes in runs:
        states = states_at(record)
        for alarm in outcomes["monitor"].false_alarms:
            now = states.get(alarm.images, set())
            key = ("named a state the samples were in then" if now & set(NAMES[alarm.name]) else
                   "in a state it does not name" if now else "while the samples were in no failing state")
            kinds[key] += 1
    rows = ["| the monitor's false alarms ... | count |", "|---|---|"]
    rows += [f"| {kind} | {count} |" for kind, count in kinds.items()]
    return "\n".join(rows)


def verdict_table(runs):
    """The report's verdict at the end of each run (its alarms replayed) against the ground truth."""
    counts = {}
    for record, failure, _ in runs:
        alarms = [{"name": alarm.name, "step": alarm.step} for alarm in monitor_alarms(record)]
        lines = [*record["lines"], {"kind": "end", **record["end"]}]
        state = verdict(Run(path=None, config=record["config"], lines=lines, alarms=alarms)).state
        failed, total = counts.get(state, (0, 0))
        counts[state] = (failed + (failure is not None), total + 1)
    rows = ["| verdict at the end | runs | of them failed by the ground truth |", "|---|---|---|"]
    rows += [f"| {state} | {total} | {failed} |" for state, (failed, total) in sorted(counts.items())]
    return "\n".join(rows)


def eye_summary(rows):
    """One paragraph and a table: how often the ground truth's states agree with what the eye saw in the grids."""
    if not rows:
        return "no judged grid among these runs."
    agreed = sum(row[4] for row in rows)
    runs = len({row[0] for row in rows})
    lines = [f"{agreed} of {len(rows)} judged grids agree ({agreed / len(rows):.0%}), over {runs} runs sampled half "
             f"failed, half not, each judged before its name and its truth were read. Disagreements:", "",
             "| run | epoch | the eye saw | the ground truth's states |", "|---|---|---|---|"]
    lines += [f"| {name} | {epoch} | {judgment} | {', '.join(states) or 'none'} |"
              for name, epoch, judgment, states, agree in rows if not agree]
    return "\n".join(lines)


def names_table():
    rows = ["| alarm or rule | the failures it names |", "|---|---|"]
    rows += [f"| {name} | {', '.join(states)} |" for name, states in NAMES.items()]
    return "\n".join(rows)


def _count(part, whole):
    return f"{part} of {whole}" if whole else "-"


def _percent(value):
    return "-" if value != value else f"{value:.0%}"


def _delay(value):
    """A delay in real images, in thousands: ``+3.2k``, ``−9.6k``, ``never`` (a miss), ``-`` (none)."""
    if value is None:
        return "-"
    if value == math.inf:
        return "never"
    return f"{value / 1000:+.1f}k".replace("-", "−")


def _images(value):
    return f"{value / 1000:.1f}k"


def _rate(value):
    return "-" if value is None else f"{value:.2f}"

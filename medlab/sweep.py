"""The robustness sweep: every lab under several seeds, other CPU kernels and one thread.

A claim is about a method, not about one run, so before a lab is called done it runs in the
default profile once per seed, once more with another set of CPU kernels, and once with a
single thread::

    python -m medlab.course sweep                          # every lab, seeds 0-4
    python -m medlab.course sweep 03_cnn_from_scratch --seeds 0 1 2

Floating-point results differ between machines; the other kernel set and the single thread are
cheap stand-ins for another laptop on this one. Each run executes in its own folder
``build/sweep/<run>/`` (results, checkpoints, and each lab's executed copy under ``labs/``), with ``$MEDLAB_CLAIMS=defer`` so
that a run records every claim even when one fails. ``build/sweep.json`` and ``build/sweep.md``
then give, for every claim, its threshold and the worst, median and best value over the runs,
and which runs failed. Results already on disk from earlier sweeps of other labs are kept, so
labs can be swept one at a time.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medlab import paths
from medlab.claims import CLAIMS_ENV, describe, margin

OTHER_KERNELS = {
    # default capability -> environment that makes PyTorch (ATen and oneDNN) use another set
    "AVX512": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "AVX2": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
"""Another CPU kernel set for each machine default (``ATEN_CPU_CAPABILITY`` alone leaves
convolutions unchanged: they run in oneDNN, which ``ONEDNN_MAX_CPU_ISA`` caps)."""


@dataclass(frozen=True)
class Run:
    """One configuration of the sweep: a name, the lab's ``SEED`` and extra environment."""

    name: str
    seed: int
    env: Mapping[str, str] = field(default_factory=dict)


def cpu_capability() -> str:
    """PyTorch's CPU capability on this machine, e.g. ``"AVX512"``, ``"AVX2"`` or ``"DEFAULT"``."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability()).upper()


def other_kernels(capability: str | None = None) -> dict[str, str]:
    """Environment that selects a CPU kernel set other than this machine's default.

    >>> other_kernels("AVX512")
    {'ATEN_CPU_CAPABILITY': 'avx2', 'ONEDNN_MAX_CPU_ISA': 'AVX2'}
    """
    capability = (capability or cpu_capability()).upper()
    if capability not in OTHER_KERNELS:
        raise RuntimeError(f"this CPU's kernel set is {capability}; the sweep knows no other to compare with")
    return dict(OTHER_KERNELS[capability])


def plan(seeds: Sequence[int] = (0, 1, 2, 3, 4), *, kernels: bool = True, one_thread: bool = True,
         capability: str | None = None) -> list[Run]:
    """The sweep's runs: one per seed, then seed 0 with other kernels, then seed 0 on one thread.

    >>> [r.name for r in plan((0, 1), capability="AVX512")]
    ['seed 0', 'seed 1', 'seed 0, avx2 kernels', 'seed 0, 1 thread']
    """
    if not seeds:
        raise ValueError("the sweep needs at least one seed")
    runs = [Run(f"seed {s}", int(s)) for s in seeds]
    if kernels:
        env = other_kernels(capability)
        runs.append(Run(f"seed {seeds[0]}, {env['ATEN_CPU_CAPABILITY']} kernels", int(seeds[0]), env))
    if one_thread:
        runs.append(Run(f"seed {seeds[0]}, 1 thread", int(seeds[0]), {"MEDLAB_NUM_THREADS": "1"}))
    return runs


def slug(run: Run) -> str:
    """A folder name for ``run``: ``"seed-0-avx2-kernels"``.

    >>> slug(Run("seed 0, 1 thread", 0))
    'seed-0-1-thread'
    """
    return "-".join("".join(ch if ch.isalnum() else " " for ch in run.name.lower()).split())


def run_one(run: Run, lab: str, *, notebook_dir: Path, sweep_dir: Path, timeout_s: int = 1800) -> dict[str, Any]:
    """Execute ``lab`` under ``run`` in a fresh process; return its status entry.

    The entry (also written to ``<sweep_dir>/<run>/status/<lab>.json``) has ``run``, ``lab``,
    ``status`` (``ok`` / ``failed``), ``wall_s`` and, for a failed lab, the last lines of its error.
    """
    folder = sweep_dir / slug(run)
    results = folder / "results"
    (results / f"{lab}.json").unlink(missing_ok=True)
    env = {**os.environ, **run.env, CLAIMS_ENV: "defer",
           paths.RESULTS_ENV: str(results.resolve()), paths.CHECKPOINT_ENV: str((folder / "checkpoints").resolve())}
    lab_build = folder / "labs" / lab
    (lab_build / "report.json").unlink(missing_ok=True)
    command = [sys.executable, "-m", "medlab.course", "run", lab, "--notebook-dir", str(notebook_dir),
               "--build-dir", str(lab_build), "--seed", str(run.seed), "--quiet"]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
        status, error = ("ok" if done.returncode == 0 else "failed"), done.stderr.strip()[-400:]
    except subprocess.TimeoutExpired:
        status, error = "failed", f"timed out after {timeout_s} s"
    entry = {"run": run.name, "lab": lab, "status": status, "wall_s": round(time.perf_counter() - start, 1)}
    if status != "ok":
        try:  # the lab's own one-line error, from the report its run wrote
            error = json.loads((lab_build / "report.json").read_text(encoding="utf-8"))["notebooks"][0]["error"]
        except (OSError, ValueError, KeyError, IndexError):
            pass
        entry["error"] = error
    (folder / "status").mkdir(parents=True, exist_ok=True)
    (folder / "status" / f"{lab}.json").write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
    return entry


def _done(sweep_dir: Path, run: Run, lab: str, notebook: Path) -> bool:
    status = sweep_dir / slug(run) / "status" / f"{lab}.json"
    return status.is_file() and status.stat().st_mtime > notebook.stat().st_mtime


def collect(runs: Sequence[Run], sweep_dir: Path) -> dict[str, Any]:
    """Everything on disk under ``sweep_dir`` for ``runs``, summarised claim by claim.

    Returns ``{"runs": [...], "labs": {lab: {"runs": {run: status entry}, "claims": {name:
    {"threshold", "at_least", "at_most", "values": {run: value}, "not_applicable": [run, ...],
    "worst", "median", "best", "failed_runs"}}}}}``. A run in which a lab ran but a claim is
    missing counts as failed; a run that recorded the claim with ``applies=False`` (see
    :func:`medlab.claims.claim`) is left out of its figures. ``worst``, ``median`` and ``best``
    are ``None`` for a claim that applied in no run.
    """
    labs: dict[str, Any] = {}
    for run in runs:
        folder = sweep_dir / slug(run)
        for status_file in sorted((folder / "status").glob("*.json")):
            entry = json.loads(status_file.read_text(encoding="utf-8"))
            lab = labs.setdefault(entry["lab"], {"runs": {}, "claims": {}})
            results_file = folder / "results" / f"{entry['lab']}.json"
            recorded = json.loads(results_file.read_text(encoding="utf-8")) if results_file.is_file() else {}
            entry["runtime_s"] = recorded.get("runtime_s")
            lab["runs"][run.name] = entry
            for name, c in (recorded.get("claims") or {}).items():
                summary = lab["claims"].setdefault(name, {
                    "threshold": describe(c["at_least"], c["at_most"]),
                    "at_least": c["at_least"], "at_most": c["at_most"], "why": c.get("why", ""), "values": {},
                    "not_applicable": []})
                if c.get("applies", True):
                    summary["values"][run.name] = c["value"]
                else:
                    summary["not_applicable"].append(run.name)
    for lab in labs.values():
        for summary in lab["claims"].values():
            values = summary["values"]
            ranked = sorted(values.values(), key=lambda v: margin(v, summary["at_least"], summary["at_most"]))
            summary["worst"], summary["best"] = (ranked[0], ranked[-1]) if ranked else (None, None)
            summary["median"] = statistics.median(values.values()) if ranked else None
            summary["worst_margin"] = margin(ranked[0], summary["at_least"], summary["at_most"]) if ranked else None
            summary["failed_runs"] = [
                r for r in lab["runs"]
                if r not in summary["not_applicable"]
                and (r not in values or margin(values[r], summary["at_least"], summary["at_most"]) < 0)
            ]
    return {"runs": [{"name": r.name, "seed": r.seed, "env": dict(r.env)} for r in runs], "labs": labs}


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _not_applicable(c: Mapping[str, Any]) -> str:
    """``" (not applicable: run, ...)"`` for a claim some runs could not test, else ``""``."""
    skipped = c.get("not_applicable", [])
    return f" (not applicable: {', '.join(skipped)})" if skipped else ""


def claims_table(summary: Mapping[str, Any]) -> str:
    """One Markdown table of every claim: lab, claim, threshold, worst and median over the runs, runs."""
    lines = ["| lab | claim | threshold | worst | median | runs passed |", "|---|---|---|---|---|---|"]
    for name in sorted(summary["labs"]):
        lab = summary["labs"][name]
        for claim_name, c in lab["claims"].items():
            tested = len(lab["runs"]) - len(c.get("not_applicable", []))
            passed = tested - len(c["failed_runs"])
            lines.append(f"| {name} | {claim_name} | {c['threshold']} | {_figure(c['worst'])} | {_figure(c['median'])} "
                         f"| {passed} of {tested}{_not_applicable(c)} |")
    return "\n".join(lines)


def render(summary: Mapping[str, Any]) -> str:
    """``build/sweep.md``: per lab, its runs' status and time, then one row per claim."""
    runs = [r["name"] for r in summary["runs"]]
    lines = ["# MedLab robustness sweep", "",
             "Runs: " + "; ".join(f"{r['name']}" + (f" ({', '.join(f'{k}={v}' for k, v in r['env'].items())})"
                                                    if r["env"] else "") for r in summary["runs"]), "",
             "## Every claim", "", claims_table(summary), ""]
    for name in sorted(summary["labs"]):
        lab = summary["labs"][name]
        ran = [r for r in runs if r in lab["runs"]]
        failed = [r for r in ran if lab["runs"][r]["status"] != "ok"]
        times = [lab["runs"][r]["runtime_s"] for r in ran if lab["runs"][r].get("runtime_s") is not None]
        lines += [f"## {name}", "",
                  f"{len(ran) - len(failed)} of {len(ran)} runs passed"
                  + (f"; failed: {', '.join(failed)}" if failed else "")
                  + (f"; run time {min(times):.0f}–{max(times):.0f} s" if times else ""), ""]
        for r in failed:
            lines.append(f"- {r}: {lab['runs'][r].get('error', '')}")
        if failed:
            lines.append("")
        if lab["claims"]:
            lines += ["| claim | threshold | worst | median | best | failed runs |", "|---|---|---|---|---|---|"]
            for claim_name, c in lab["claims"].items():
                lines.append(f"| {claim_name} | {c['threshold']} | {_figure(c['worst'])} | {_figure(c['median'])} "
                             f"| {_figure(c['best'])} | {', '.join(c['failed_runs']) or '—'}{_not_applicable(c)} |")
            lines.append("")
    return "\n".join(lines)


def sweep(
    labs: Sequence[str],
    *,
    notebook_dir: Path,
    build_dir: Path,
    runs: Sequence[Run],
    jobs: int = 1,
    resume: bool = False,
) -> dict[str, Any]:
    """Run every lab in ``labs`` under every run (``jobs`` at a time); write and return the summary.

    Runs go run by run (every lab under seed 0, then every lab under seed 1, ...), so a problem
    shows early. With ``resume``, a lab already run under a run since its notebook last changed is
    not run again. Writes ``build_dir/sweep.json`` and ``build_dir/sweep.md`` from every result
    under ``build_dir/sweep/`` for these runs, including labs swept earlier.
    """
    from tqdm.auto import tqdm

    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    sweep_dir = Path(build_dir) / "sweep"
    tasks = [(run, lab) for run in runs for lab in labs
             if not (resume and _done(sweep_dir, run, lab, Path(notebook_dir) / f"{lab}.ipynb"))]
    with ThreadPoolExecutor(max_workers=jobs) as pool, tqdm(total=len(tasks), desc="sweep", unit="run") as bar:
        futures = [pool.submit(run_one, run, lab, notebook_dir=Path(notebook_dir), sweep_dir=sweep_dir)
                   for run, lab in tasks]
        for future in futures:
            entry = future.result()
            bar.set_postfix_str(f"{entry['lab']} / {entry['run']}: {entry['status']}")
            bar.update()
    return write(collect(runs, sweep_dir), build_dir)


def write(summary: Mapping[str, Any], build_dir: Path) -> Mapping[str, Any]:
    """Write ``build_dir/sweep.json`` and ``build_dir/sweep.md``; return ``summary``."""
    Path(build_dir, "sweep.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    Path(build_dir, "sweep.md").write_text(render(summary), encoding="utf-8")
    return summary


def failures(summary: Mapping[str, Any]) -> list[str]:
    """``"<lab> / <run>"`` for every lab run that failed or has a failed claim."""
    found = []
    for name, lab in sorted(summary["labs"].items()):
        bad = {r for r, e in lab["runs"].items() if e["status"] != "ok"}
        bad |= {r for c in lab["claims"].values() for r in c["failed_runs"]}
        found += [f"{name} / {r}" for r in lab["runs"] if r in bad]
    return found

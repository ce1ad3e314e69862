"""Record a lab's key results, and collect every lab's results into the course report.

A lab ends with its claims (:func:`medlab.claims.claim`, asserted) and::

    record(session, val_accuracy=0.87, val_auc=0.93)

(reported, not asserted), which writes ``<results dir>/<notebook>.json`` with the results, the
claims and their thresholds. The results folder is :func:`medlab.paths.results_dir`
(``$MEDLAB_RESULTS_DIR`` if set, else ``build/results`` in the project).
``make course`` then turns the folder into ``build/report.json`` and ``build/report.md``.

This module imports neither torch nor NumPy: it only needs the session's plain attributes.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from medlab.paths import results_dir

def _plain(name: str, value: Any) -> Any:
    """Turn a result into a JSON value, refusing what a report cannot show honestly."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # NumPy / torch scalars
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"result {name!r} is {value}: record only finite numbers")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(name, v) for v in value]
    raise TypeError(
        f"result {name!r} has type {type(value).__name__}: record numbers, text, booleans "
        "or lists of them (convert arrays with float(...) or .tolist())"
    )


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return str(value)


def _write_json_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(session: Any) -> Path:
    """Write the session's results and claims so far to ``<results dir>/<notebook>.json``."""
    payload = {
        "notebook": session.notebook,
        "profile": session.profile,
        "seed": session.seed,
        "device": session.device_name,
        "runtime_s": round(float(session.elapsed()), 2),
        "results": dict(session.results),
        "claims": dict(session.claims),
    }
    path = results_dir() / f"{session.notebook}.json"
    _write_json_atomically(path, payload)
    return path


def record(session: Any, *, quiet: bool = False, **results: Any) -> Path:
    """Write the lab's key results, claims and run time to ``<results dir>/<notebook>.json``.

    ``session`` is the :class:`medlab.runtime.Session` from the lab's setup cell; its
    elapsed time becomes ``runtime_s``. Results are plain numbers, text or booleans, named
    plainly (``val_dice``, ``test_auc``); they are reported, not asserted (claims are asserted).
    Returns the path written. Prints one line naming what was recorded (the run time is
    printed as ``run time <s> s``) and one per claim. With ``$MEDLAB_CLAIMS=defer``, raises
    :class:`medlab.claims.ClaimError` after writing if a checked claim failed.

    Taught in lab 00 (How to use this workbook).
    """
    from medlab.claims import ClaimError, deferred, describe, failed_claims, failure_message

    if not results and not session.claims:
        raise ValueError("record() needs at least one named result, e.g. record(session, val_auc=0.91)")
    plain = {name: _plain(name, value) for name, value in results.items()}
    clash = sorted(set(plain) & set(session.claims))
    if clash:
        raise ValueError(f"{', '.join(clash)}: already recorded as a claim; give results other names")
    session.results.update(plain)
    path = write_results(session)
    if not quiet:
        shown = ", ".join(f"{k}={_format_value(v)}" for k, v in session.results.items())
        print(f"Recorded {len(session.results)} results and {len(session.claims)} claims for "
              f"{session.notebook} (run time {round(float(session.elapsed()), 2)} s): {shown}")
        for name, c in session.claims.items():
            state = (("holds" if c["holds"] else "FAILS") if c["checked"]
                     else "not checked (smoke)" if c.get("applies", True) else "not checked (does not apply here)")
            print(f"  claim {name} = {c['value']:.4g}, {describe(c['at_least'], c['at_most'])}: {state}")
    failed = failed_claims(session.claims)
    if failed and deferred():
        raise ClaimError("; ".join(failure_message(n, session.claims[n]) for n in failed))
    return path


def load_results(folder: Path) -> dict[str, dict[str, Any]]:
    """Read every ``*.json`` results file in ``folder``, keyed by notebook name."""
    found = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a valid results file ({exc})") from None
        found[data.get("notebook", path.stem)] = data
    return found


def render_markdown(entries: Iterable[Mapping[str, Any]], *, title: str = "MedLab course report") -> str:
    """A Markdown table with one row per notebook.

    Each entry has ``notebook`` and ``status`` and may have ``profile``, ``device``,
    ``runtime_s`` (recorded by the notebook), ``wall_s`` (measured around the whole run,
    kernel start included), ``results``, ``claims`` and ``error``. A second table lists every
    claim with its value, threshold and margin (negative: the claim failed).
    """
    from medlab.claims import describe

    entries = list(entries)
    lines = [
        f"# {title}",
        "",
        "| notebook | status | profile | device | run time (s) | wall time (s) | key results |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        results = e.get("results") or {}
        shown = ", ".join(f"{k} = {_format_value(v)}" for k, v in results.items())
        if e.get("error"):
            shown = (shown + "; " if shown else "") + f"error: {e['error']}"
        runtime = e.get("runtime_s")
        wall = e.get("wall_s")
        lines.append(
            f"| {e['notebook']} | {e['status']} | {e.get('profile', '')} | {e.get('device', '')} "
            f"| {'' if runtime is None else f'{runtime:.1f}'} | {'' if wall is None else f'{wall:.1f}'} "
            f"| {shown.replace('|', '/')} |"
        )
    claims = [(e["notebook"], name, c) for e in entries for name, c in (e.get("claims") or {}).items()]
    if claims:
        lines += ["", "## Claims", "",
                  "| notebook | claim | value | threshold | margin | holds |", "|---|---|---|---|---|---|"]
        for notebook, name, c in claims:
            state = ("yes" if c["holds"] else "**no**") if c.get("checked", True) else "not checked"
            lines.append(f"| {notebook} | {name} | {c['value']:.4g} | {describe(c['at_least'], c['at_most'])} "
                         f"| {c['margin']:+.3g} | {state} |")
    return "\n".join(lines) + "\n"


def write_report(entries: list[Mapping[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir``; return both paths."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    _write_json_atomically(json_path, {"notebooks": list(entries)})
    md_path.write_text(render_markdown(entries), encoding="utf-8")
    return json_path, md_path

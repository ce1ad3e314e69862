"""The robustness sweep: runs planned, executed in their own folders, summarised claim by claim."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from medlab import sweep
from medlab.course import main


def test_plan_names_every_run_and_its_environment():
    runs = sweep.plan((0, 1, 2), capability="AVX512")
    assert [r.name for r in runs] == ["seed 0", "seed 1", "seed 2", "seed 0, avx2 kernels", "seed 0, 1 thread"]
    assert [r.seed for r in runs] == [0, 1, 2, 0, 0]
    assert runs[3].env == {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert runs[4].env == {"MEDLAB_NUM_THREADS": "1"}
    assert sweep.plan((3,), kernels=False, one_thread=False) == [sweep.Run("seed 3", 3)]
    assert sweep.other_kernels("AVX2") == {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}
    with pytest.raises(RuntimeError, match="knows no other"):
        sweep.other_kernels("DEFAULT")
    with pytest.raises(ValueError, match="at least one seed"):
        sweep.plan(())


def test_this_machine_has_a_kernel_set_to_compare_with():
    assert sweep.cpu_capability() in sweep.OTHER_KERNELS or sweep.cpu_capability() == "DEFAULT"


def _fake_run(sweep_dir, run, lab, *, status="ok", claims=None, runtime_s=10.0, not_applicable=()):
    folder = sweep_dir / sweep.slug(run)
    (folder / "status").mkdir(parents=True, exist_ok=True)
    (folder / "results").mkdir(parents=True, exist_ok=True)
    (folder / "status" / f"{lab}.json").write_text(json.dumps({"run": run.name, "lab": lab, "status": status}))
    if claims is not None:
        (folder / "results" / f"{lab}.json").write_text(json.dumps({"runtime_s": runtime_s, "claims": {
            name: {"value": v, "at_least": 0.9, "at_most": None, "why": "", "applies": name not in not_applicable}
            for name, v in claims.items()}}))


def test_collect_takes_the_worst_by_margin_and_names_failed_and_missing_runs(tmp_path):
    runs = sweep.plan((0, 1, 2), kernels=False, one_thread=False)
    _fake_run(tmp_path, runs[0], "05_lab", claims={"dice": 0.95, "gain": 0.99})
    _fake_run(tmp_path, runs[1], "05_lab", claims={"dice": 0.88, "gain": 0.97}, status="failed")
    _fake_run(tmp_path, runs[2], "05_lab", claims={"dice": 0.93}, status="failed")  # died before "gain"
    summary = sweep.collect(runs, tmp_path)
    dice, gain = summary["labs"]["05_lab"]["claims"]["dice"], summary["labs"]["05_lab"]["claims"]["gain"]
    assert (dice["worst"], dice["median"], dice["best"]) == (0.88, 0.93, 0.95)
    assert dice["failed_runs"] == ["seed 1"] and dice["threshold"] == "≥ 0.9"
    assert gain["failed_runs"] == ["seed 2"] and gain["worst"] == 0.97
    assert sweep.failures(summary) == ["05_lab / seed 1", "05_lab / seed 2"]
    text = sweep.render(summary)
    assert "1 of 3 runs passed; failed: seed 1, seed 2; run time 10–10 s" in text
    assert "| dice | ≥ 0.9 | 0.88 | 0.93 | 0.95 | seed 1 |" in text
    assert "| 05_lab | dice | ≥ 0.9 | 0.88 | 0.93 | 2 of 3 |" in text


def test_runs_where_a_claim_does_not_apply_are_left_out_of_its_figures(tmp_path):
    runs = sweep.plan((0, 1), kernels=False, one_thread=True)
    _fake_run(tmp_path, runs[0], "10_lab", claims={"speedup": 1.8, "dice": 0.95})
    _fake_run(tmp_path, runs[1], "10_lab", claims={"speedup": 1.7, "dice": 0.94})
    _fake_run(tmp_path, runs[2], "10_lab", claims={"speedup": 0.5, "dice": 0.93}, not_applicable=("speedup",))
    summary = sweep.collect(runs, tmp_path)
    speedup = summary["labs"]["10_lab"]["claims"]["speedup"]
    assert speedup["not_applicable"] == ["seed 0, 1 thread"] and speedup["failed_runs"] == []
    assert (speedup["worst"], speedup["best"]) == (1.7, 1.8)
    assert sweep.failures(summary) == []
    text = sweep.render(summary)
    assert "| 10_lab | speedup | ≥ 0.9 | 1.7 | 1.75 | 2 of 2 (not applicable: seed 0, 1 thread) |" in text
    assert "| 10_lab | dice | ≥ 0.9 | 0.93 | 0.94 | 3 of 3 |" in text
    # a claim that applied in no run has no figures, and fails no run
    only = sweep.plan((0,), kernels=False, one_thread=False)
    _fake_run(tmp_path / "b", only[0], "10_lab", claims={"speedup": 0.5}, not_applicable=("speedup",))
    summary = sweep.collect(only, tmp_path / "b")
    assert summary["labs"]["10_lab"]["claims"]["speedup"]["worst"] is None
    assert "| 10_lab | speedup | ≥ 0.9 | — | — | 0 of 0 (not applicable: seed 0) |" in sweep.render(summary)


@pytest.mark.slow
def test_a_sweep_runs_each_seed_and_environment_and_keeps_every_claim(tmp_path):
    source = """
import os
from medlab.runtime import setup
from medlab.claims import claim
from medlab.report import record
session = setup("01_tiny", profile=PROFILE, seed=SEED, device="cpu")
claim(session, "score", 0.5 + 0.3 * SEED, at_most=0.7)
claim(session, "always", 1.0, at_least=0.5)
record(session, threads=session.threads, aten=os.environ.get("ATEN_CPU_CAPABILITY", ""))
"""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    params = new_code_cell('PROFILE = "default"\nSEED = 0\nDEVICE = "auto"', metadata={"tags": ["parameters"]})
    nbformat.write(new_notebook(cells=[params, new_code_cell(source)], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), notebooks / "01_tiny.ipynb")
    runs = sweep.plan((0, 1), capability="AVX512")
    summary = sweep.sweep(["01_tiny"], notebook_dir=notebooks, build_dir=tmp_path / "build", runs=runs, jobs=2)
    lab = summary["labs"]["01_tiny"]
    errors = {name: r.get("error") for name, r in lab["runs"].items() if name != "seed 1"}
    assert all(r["status"] == "ok" for name, r in lab["runs"].items() if name != "seed 1"), errors
    assert lab["claims"]["score"]["failed_runs"] == ["seed 1"] and lab["claims"]["score"]["worst"] == pytest.approx(0.8)
    assert lab["claims"]["always"]["failed_runs"] == []  # recorded although "score" failed first (deferred)
    assert lab["runs"]["seed 1"]["status"] == "failed" and "claim 'score' does not hold" in lab["runs"]["seed 1"]["error"]
    recorded = {r.name: json.loads((tmp_path / "build" / "sweep" / sweep.slug(r) / "results" / "01_tiny.json").read_text())
                for r in runs}
    assert recorded["seed 0, 1 thread"]["results"]["threads"] == 1
    assert recorded["seed 0, avx2 kernels"]["results"]["aten"] == "avx2" and recorded["seed 0"]["results"]["aten"] == ""
    assert (tmp_path / "build" / "sweep.md").read_text().startswith("# MedLab robustness sweep")
    # resuming runs nothing that is up to date, and gives the same summary
    status = tmp_path / "build" / "sweep" / "seed-0" / "status" / "01_tiny.json"
    before = status.stat().st_mtime_ns
    again = sweep.sweep(["01_tiny"], notebook_dir=notebooks, build_dir=tmp_path / "build", runs=runs, resume=True)
    assert status.stat().st_mtime_ns == before and again["labs"] == summary["labs"]
    # the summary can be rebuilt from disk, and the command line's exit code follows the failures
    assert main(["sweep", "--report-only", "--seeds", "0", "1", "--no-kernels", "--no-one-thread",
                 "--notebook-dir", str(notebooks), "--build-dir", str(tmp_path / "build")]) == 1

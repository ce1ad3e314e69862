"""Execute the labs with papermill and write the course report (what ``make course`` runs).

From the command line::

    python -m medlab.course run --profile default          # every lab
    python -m medlab.course run 00_orientation --profile smoke
    python -m medlab.course run 03_cnn_from_scratch --seed 2 -p DATASET synthetic
    python -m medlab.course sweep --seeds 0 1 2 3 4        # the robustness sweep (medlab.sweep)
    python -m medlab.course strip notebooks/*.ipynb        # clear outputs before committing
    python -m medlab.course student                        # student copies into build/student/
    python -m medlab.course grading --profile smoke        # an nbgrader course in build/grading/
    python -m medlab.course site                           # build/executed/ -> build/site/ (a website)

Executed copies go to ``build/executed/``, each lab's results to ``build/results/`` and the
summary to ``build/report.md`` and ``build/report.json`` (``build`` is
:func:`medlab.paths.build_dir`). ``strip`` does not import torch: it runs in a second.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

from medlab import paths, report
from medlab.profiles import PROFILES, check_profile

KERNEL_NAME = "medlab"
"""Kernel that ``make`` registers for the project's virtual environment."""


class NotebookError(RuntimeError):
    """A notebook cannot be executed as a lab (e.g. it has no ``parameters`` cell)."""


def find_notebooks(folder: Path) -> list[Path]:
    """The lab notebooks in ``folder`` (not in sub-folders), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no notebook folder at {folder}")
    return sorted(p for p in folder.glob("*.ipynb") if p.is_file())


def parameters_cell(nb: nbformat.NotebookNode) -> int:
    """Index of the cell tagged ``parameters``; a ``NotebookError`` if there is none or several."""
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        raise NotebookError("no cell is tagged 'parameters', so papermill could not set PROFILE/SEED/DEVICE")
    if len(tagged) > 1:
        raise NotebookError(f"cells {tagged} are all tagged 'parameters'; tag exactly one")
    return tagged[0]


def strip_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove outputs, execution counts and volatile metadata in place; return ``nb``."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in ("tags",)}
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in ("kernelspec", "language_info")}
    if "language_info" in nb.metadata:
        nb.metadata["language_info"] = {"name": nb.metadata["language_info"].get("name", "python")}
    return nb


def _kernel_name() -> str | None:
    """The project's registered kernel if there is one, else ``None`` (the notebook's own)."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else None


def execute(
    path: Path,
    out_dir: Path,
    *,
    profile: str = "default",
    parameters: dict[str, Any] | None = None,
    timeout_s: int = 900,
) -> Path:
    """Execute the notebook at ``path`` with papermill; return the executed copy's path.

    ``PROFILE`` (and any ``parameters``) are injected below the ``parameters`` cell. The
    kernel runs in the notebook's folder. A failing cell raises papermill's
    ``PapermillExecutionError`` after the executed copy, with the error, is written.
    """
    import papermill

    path, out_dir = Path(path), Path(out_dir)
    check_profile(profile)
    try:
        parameters_cell(nbformat.read(path, as_version=4))
    except NotebookError as exc:
        raise NotebookError(f"{path}: {exc}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    for attempt in (1, 2):
        try:
            papermill.execute_notebook(
                str(path),
                str(out),
                parameters={"PROFILE": profile, **(parameters or {})},
                kernel_name=_kernel_name(),
                cwd=str(path.parent),
                progress_bar=False,
                execution_timeout=timeout_s,
                kernel_manager_class="medlab.kernels.EncryptedKernelManager",
            )
            return out
        except papermill.PapermillExecutionError:
            raise
        except Exception as exc:
            if attempt == 2 or _ran_a_cell(out):
                raise
            # The kernel never ran a cell (it died or timed out while starting, e.g. when another
            # process took one of its ports): nothing of the lab ran, so starting again is safe.
            print(f"{path.name}: the kernel did not start ({_one_line(exc)}); starting it once more",
                  file=sys.stderr)
    return out


def _ran_a_cell(executed: Path) -> bool:
    """Whether papermill's copy at ``executed`` shows a code cell that the kernel ran."""
    try:
        nb = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        return False
    return any(c.cell_type == "code" and c.get("execution_count") for c in nb.cells)


def run_course(
    notebook_dir: Path,
    build_dir: Path,
    *,
    profile: str = "default",
    only: Sequence[str] = (),
    parameters: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Execute the labs (all, or those named in ``only``) and write the report.

    Results go to ``build_dir/results`` unless ``$MEDLAB_RESULTS_DIR`` says otherwise. Returns
    one report entry per notebook; a failed notebook gets ``status="failed"`` and its error,
    and the others still run.
    """
    from tqdm.auto import tqdm

    build_dir = Path(build_dir)
    results_folder = paths.results_dir(build=build_dir).resolve()
    os.environ[paths.RESULTS_ENV] = str(results_folder)  # the labs' kernels record there too
    from medlab.exercises import CHECKS_ENV  # here: `strip` must not import NumPy

    os.environ.setdefault(CHECKS_ENV, "strict")  # the worked solutions must pass their checks
    # PyTorch's profiler (lab 10) logs trace markers, and on a CPU-only machine a failed GPU probe,
    # from C++ straight to this terminal, through the progress bar; its messages stay in the lab.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    notebooks = _chosen(find_notebooks(notebook_dir), only, notebook_dir)
    entries = []
    for path in tqdm(notebooks, desc=f"labs ({profile})", unit="lab"):
        (results_folder / f"{path.stem}.json").unlink(missing_ok=True)
        start = time.perf_counter()
        entry: dict[str, Any] = {"notebook": path.stem, "profile": profile}
        try:
            execute(path, build_dir / "executed", profile=profile, parameters=parameters)
            entry["status"] = "ok"
        except Exception as exc:  # report every lab, then fail at the end
            entry["status"] = "failed"
            entry["error"] = _one_line(exc)
        entry["wall_s"] = round(time.perf_counter() - start, 1)
        recorded = report.load_results(results_folder).get(path.stem)
        if recorded:
            entry.update({k: recorded[k] for k in ("device", "runtime_s", "results", "claims") if k in recorded})
        entries.append(entry)
    report.write_report(entries, build_dir)
    return entries


def _chosen(notebooks: list[Path], only: Sequence[str], folder: Path) -> list[Path]:
    """The notebooks named in ``only`` (all when it is empty); an unknown name raises."""
    if not only:
        return notebooks
    wanted = {Path(n).stem for n in only}
    unknown = wanted - {p.stem for p in notebooks}
    if unknown:
        raise FileNotFoundError(f"no such notebook(s) in {folder}: {', '.join(sorted(unknown))}")
    return [p for p in notebooks if p.stem in wanted]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    # papermill's message ends with the exception line; keep that part.
    useful = [line for line in text if line.strip() and not line.startswith(("-", "="))]
    return (useful[-1] if useful else type(exc).__name__)[:300]


def _literal(text: str) -> Any:
    """A ``-p NAME VALUE`` value: a Python literal if it is one, else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parser() -> argparse.ArgumentParser:
    """The command line: ``run``, ``sweep``, ``strip``, ``student``, ``grading`` and ``site``."""
    parser = argparse.ArgumentParser(prog="python -m medlab.course", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute labs and write build/report.md")
    run.add_argument("notebooks", nargs="*", help="lab names (default: all)")
    run.add_argument("--profile", default="default", choices=PROFILES)
    run.add_argument("--device", default=None, help="override DEVICE (auto, cpu, cuda, mps)")
    run.add_argument("--seed", default=None, type=int, help="override SEED")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="set any parameter, e.g. -p DATASET pneumoniamnist")
    run.add_argument("--notebook-dir", default="notebooks", type=Path)
    run.add_argument("--build-dir", default=None, type=Path, help="default: $MEDLAB_BUILD_DIR, else build/")
    run.add_argument("--quiet", action="store_true", help="do not print the report")
    sw = sub.add_parser("sweep", help="run labs under several seeds, CPU kernels and one thread")
    sw.add_argument("notebooks", nargs="*", help="lab names (default: all)")
    sw.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    sw.add_argument("--no-kernels", action="store_true", help="skip the run with another CPU kernel set")
    sw.add_argument("--no-one-thread", action="store_true", help="skip the single-thread run")
    sw.add_argument("--jobs", type=int, default=1,
                    help="runs at a time; only where cores >= jobs x threads per run (else much slower), timings not comparable")
    sw.add_argument("--report-only", action="store_true", help="only summarise what earlier sweeps left")
    sw.add_argument("--resume", action="store_true", help="skip labs already run under a run since they last changed")
    sw.add_argument("--notebook-dir", default="notebooks", type=Path)
    sw.add_argument("--build-dir", default=None, type=Path, help="default: $MEDLAB_BUILD_DIR, else build/")
    strip = sub.add_parser("strip", help="clear outputs and execution counts in place")
    strip.add_argument("paths", nargs="+", type=Path)
    st = sub.add_parser("student", help="write student copies: each worked solution replaced by a stub")
    st.add_argument("notebooks", nargs="*", help="lab names (default: all)")
    st.add_argument("--notebook-dir", default="notebooks", type=Path)
    st.add_argument("--out", default=None, type=Path, help="default: <build>/student")
    gr = sub.add_parser("grading", help="write an nbgrader course (source versions and nbgrader_config.py)")
    gr.add_argument("notebooks", nargs="*", help="lab names (default: all)")
    gr.add_argument("--notebook-dir", default="notebooks", type=Path)
    gr.add_argument("--course-dir", default=None, type=Path, help="default: <build>/grading")
    gr.add_argument("--profile", default=None, choices=PROFILES, help="the profile the class runs (default: the lab's own)")
    si = sub.add_parser("site", help="write a static website of the executed labs into <build>/site")
    si.add_argument("notebooks", nargs="*", help="lab names (default: all)")
    si.add_argument("--notebook-dir", default="notebooks", type=Path)
    si.add_argument("--build-dir", default=None, type=Path, help="default: $MEDLAB_BUILD_DIR, else build/")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv``); returns the exit status."""
    args = _parser().parse_args(argv)
    if getattr(args, "build_dir", "") is None:
        args.build_dir = paths.build_dir()

    if args.command == "strip":
        for path in args.paths:
            nb = nbformat.read(path, as_version=4)
            nbformat.write(strip_outputs(nb), path)
        return 0

    if args.command == "sweep":
        return _sweep(args)

    if args.command == "student":
        from medlab import student

        chosen = _chosen(find_notebooks(args.notebook_dir), args.notebooks, args.notebook_dir)
        out = args.out or paths.build_dir() / "student"
        for path in student.write_student_copies(chosen, out):
            print(path)
        return 0

    if args.command == "site":
        from medlab import site

        _chosen(find_notebooks(args.notebook_dir), args.notebooks, args.notebook_dir)  # names known
        readme = args.notebook_dir.resolve().parent / "README.md"
        try:
            pages = site.build_site(notebook_dir=args.notebook_dir, executed_dir=args.build_dir / "executed",
                                    site_dir=args.build_dir / "site", readme=readme,
                                    report=args.build_dir / "report.md", only=args.notebooks)
        except site.SiteError as exc:
            print(f"make site: {exc}", file=sys.stderr)
            return 1
        print(f"{len(pages) - 1} lab pages; open {pages[0]}")
        return 0

    if args.command == "grading":
        from medlab import grading

        chosen = _chosen(find_notebooks(args.notebook_dir), args.notebooks, args.notebook_dir)
        course_dir = args.course_dir or paths.build_dir() / "grading"
        for path in grading.write_course(chosen, course_dir, profile=args.profile):
            print(path)
        print(f"next: cd {course_dir} && nbgrader generate_assignment <lab>  (then autograde, export)")
        return 0

    parameters = {name: _literal(value) for name, value in args.parameter}
    if args.device:
        parameters["DEVICE"] = args.device
    if args.seed is not None:
        parameters["SEED"] = args.seed
    entries = run_course(args.notebook_dir, args.build_dir, profile=args.profile,
                         only=args.notebooks, parameters=parameters or None)
    if not args.quiet:
        print((args.build_dir / "report.md").read_text(encoding="utf-8"))
    failed = [e["notebook"] for e in entries if e["status"] != "ok"]
    if failed:
        print(f"{len(failed)} lab(s) failed: {', '.join(failed)}; executed copies with the error "
              f"are in {args.build_dir / 'executed'}", file=sys.stderr)
        return 1
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from medlab import sweep

    runs = sweep.plan(args.seeds, kernels=not args.no_kernels, one_thread=not args.no_one_thread)
    labs = [p.stem for p in find_notebooks(args.notebook_dir)]
    unknown = sorted({Path(n).stem for n in args.notebooks} - set(labs))
    if unknown:
        raise SystemExit(f"no such notebook(s) in {args.notebook_dir}: {', '.join(unknown)}")
    chosen = [lab for lab in labs if not args.notebooks or lab in {Path(n).stem for n in args.notebooks}]
    if args.report_only:
        summary = sweep.write(sweep.collect(runs, args.build_dir / "sweep"), args.build_dir)
    else:
        summary = sweep.sweep(chosen, notebook_dir=args.notebook_dir, build_dir=args.build_dir,
                              runs=runs, jobs=args.jobs, resume=args.resume)
    print((args.build_dir / "sweep.md").read_text(encoding="utf-8"))
    failed = [f for f in sweep.failures(summary) if f.split(" / ")[0] in chosen]
    if failed:
        print(f"{len(failed)} lab run(s) failed: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The main job: execute every numbered notebook with papermill (executed copies in outputs/notebooks/), then
write outputs/results/summary.md from every result table.

    python -m endolib.workbook                 # all notebooks, embedded synthetic default
    python -m endolib.workbook --only 03 04    # a subset, by number prefix
    python -m endolib.workbook -p data_root /data/real   # a parameter passed to every notebook that has it
"""
import argparse
import logging
import sys
import time

from endolib.paths import NOTEBOOKS, OUTPUTS
from endolib.tasks.phase import PHASE_DATASETS

log = logging.getLogger("endolib.workbook")


def list_notebooks(only=None):
    books = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        books = [p for p in books if any(p.name.startswith(o) for o in only)]
    return books


# Notebooks the main job runs once per dataset (the same notebook serves several benchmarks of a family).
SWEEPS = {"06_phase_recognition.ipynb": ("dataset", list(PHASE_DATASETS))}


def runs_for(name: str, declared, parameters=None) -> list:
    """[(executed copy's file name, papermill parameters)] for notebook `name`: one run, or one per dataset of
    its sweep (a parameter given by the user wins over the sweep)."""
    params = {k: v for k, v in (parameters or {}).items() if k in declared}
    key, values = SWEEPS.get(name, (None, []))
    if key is None or key in params:
        return [(name, params)]
    stem = name.rsplit(".", 1)[0]
    return [(f"{stem}_{v}.ipynb", {**params, key: v}) for v in values]


def run_all(only=None, parameters=None, out_dir=None) -> dict:
    """Run the notebooks in order; a failure is recorded and the rest still run. Returns {run name: error|None}."""
    import papermill as pm  # imported here: the library itself does not need papermill

    out_dir = out_dir or OUTPUTS / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for nb in list_notebooks(only):
        for out_name, params in runs_for(nb.name, pm.inspect_notebook(str(nb)), parameters):
            t0 = time.time()
            log.info("running %s %s", nb.name, params or "")
            try:
                pm.execute_notebook(str(nb), str(out_dir / out_name), parameters=params, cwd=str(nb.parent),
                                    progress_bar=True, kernel_name="python3")
                results[out_name] = None
            except Exception as e:  # keep going: one broken notebook must not lose the others' results
                results[out_name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            log.info("%s %s in %.0f s", out_name, "FAILED" if results[out_name] else "ok", time.time() - t0)
    return results


def _parse_value(text):
    import yaml
    return yaml.safe_load(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="notebook number prefixes to run (default: all)")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="papermill parameter for every notebook that declares it (value parsed as YAML)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    results = run_all(args.only, {k: _parse_value(v) for k, v in args.p})
    if not results:
        log.error("no notebooks found under %s", NOTEBOOKS)
        return 1
    for name, err in results.items():
        print(f"{'FAIL' if err else 'ok  '} {name}" + (f"  -- {err}" if err else ""))
    from endolib.reporting import build_summary
    print(f"results summary (ours beside the paper's figures): {build_summary()}")
    failed = [n for n, e in results.items() if e]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

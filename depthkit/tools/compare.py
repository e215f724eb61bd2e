"""Did a reproduction reproduce? Its numbers against the committed ones, metric by metric, with a noise band.

``make reproduce`` ends with this table; ``python -m depthkit compare RESULTS.json`` prints it for any run
(a student's, a Colab run's) against the committed ``figures/results.json``.

For every metric of every model, the band is::

    band = NOISE_Z * sqrt(2 * sd_seed**2 + se_test**2)

* ``sd_seed`` is the committed recipe's seed-to-seed standard deviation (``figures/seed_spread.json``,
  written by :mod:`depthkit.tools.seeds`). CPU kernels differ between machines and training amplifies
  the difference, so a run on another CPU is, in effect, another seed: two runs of one recipe differ by a
  variance of ``2 * sd_seed**2``.
* ``se_test`` is the test-sampling noise: the standard error of the mean per-image difference between
  this run and the committed one on the same test images (both ``per_image_scores.json``); when this
  run's per-image scores are missing, ``sqrt(2)`` times the committed run's standard error.

Without a spread file the band is the test-sampling noise alone, and the table says so (too narrow for a
run on another CPU). The verdict is "within noise" when ``|difference| <= band``, else "differs", and a
difference is said plainly with what to check first: the torch version, the CPU and the device, which each
run records in its provenance.

Each model's weights are compared too (``results.json``'s ``weights``, :func:`depthkit.reproduce.results_weights`):
a random-init run against a pretrained committed one differs *by design*, and its differing numbers are
labelled so (``differs (weights differ by design)``) rather than left as plain differences; weights not
recorded (an older file) are said to be unknown.
"""
from __future__ import annotations

import math

import numpy as np

from depthkit.evaluate import NOISE_Z, as_array, standard_error
from depthkit.models import weights_kind
from depthkit.reproduce import results_weights

BY_DESIGN = "differs (weights differ by design)"  # the verdict of a number beyond its band when the weights differ
BLOCKS = ("nyu", "nyu_eigen", "diw_after_nyu", "diw", "nyu_after_diw")  # results.json's metric blocks per model


def _test_se(model: str, block: str, metric: str, run_scores: dict | None, committed_scores: dict | None) -> float | None:
    """The test-sampling standard error of the difference of the two runs' means, from per-image scores."""
    def values(scores: dict | None) -> list | None:
        return ((scores or {}).get("models", {}).get(model, {}).get(block) or {}).get(metric)

    mine, theirs = values(run_scores), values(committed_scores)
    if theirs is None or len(theirs) < 2:
        return None
    if mine is not None and len(mine) == len(theirs):
        se = standard_error(as_array(mine) - as_array(theirs))
    else:
        se = math.sqrt(2) * standard_error(theirs)
    return se if math.isfinite(se) else None


def _seed_sd(spread: dict | None, model: str, block: str, metric: str) -> float | None:
    entry = ((spread or {}).get("models", {}).get(model, {}) or {}).get(f"{block}.{metric}")
    return entry["std"] if entry and len(entry.get("values", {})) >= 2 else None


def compare_weights(run: dict, committed: dict) -> dict[str, dict]:
    """Per committed model: both runs' weights (labels), their kinds, and whether they differ by design
    (one pretrained, the other random init; unknown when either is not recorded)."""
    out = {}
    for model in committed.get("models", {}):
        mine, theirs = results_weights(run, model), results_weights(committed, model)
        kinds = (weights_kind(mine), weights_kind(theirs))
        out[model] = {"run": mine, "committed": theirs, "unknown": "unknown" in kinds,
                      "by_design": "unknown" not in kinds and kinds[0] != kinds[1]}
    return out


def compare_results(run: dict, committed: dict, spread: dict | None = None, run_scores: dict | None = None,
                    committed_scores: dict | None = None) -> dict:
    """Every metric the committed results hold, beside the run's: difference, band, verdict; the weights; and the notes."""
    rows, weights = [], compare_weights(run, committed)
    for model, blocks in committed.get("models", {}).items():
        for block in BLOCKS:
            for metric, ref in (blocks.get(block) or {}).items():
                value = ((run.get("models", {}).get(model) or {}).get(block) or {}).get(metric)
                sd, se = _seed_sd(spread, model, block, metric), _test_se(model, block, metric, run_scores, committed_scores)
                terms = [2 * sd**2] if sd is not None else []
                terms += [se**2] if se is not None else []
                band = NOISE_Z * math.sqrt(sum(terms)) if terms else None
                diff = None if value is None else value - ref
                verdict = ("missing" if value is None else "within noise" if diff == 0 or (band is not None and abs(diff) <= band)
                           else "no band" if band is None else BY_DESIGN if weights[model]["by_design"] else "differs")
                rows.append({"model": model, "metric": f"{block}.{metric}", "committed": ref, "run": value,
                             "difference": diff, "band": band, "seed_sd": sd, "test_se": se, "verdict": verdict})
    notes = []
    if spread is None:
        notes.append("no seed spread (figures/seed_spread.json is missing): the bands are the test-sampling noise "
                     "alone, too narrow for a run on another CPU; `make seeds` measures the spread")
    elif spread.get("fingerprint", {}).get("fingerprint") != (committed.get("fingerprint") or {}).get("fingerprint"):
        notes.append("the seed spread was measured on other code than the committed results (fingerprints differ)")
    if committed_scores is None:
        notes.append("no per-image scores of the committed run: no test-sampling term in the bands")
    return {"rows": rows, "notes": notes, "run": run.get("provenance", {}), "committed": committed.get("provenance", {}),
            "weights": weights, "differs": [r for r in rows if r["verdict"] in ("differs", BY_DESIGN)]}


def _weights_lines(report: dict) -> list[str]:
    """One line per model: the weights of both runs, labelled when they differ by design or are unknown."""
    lines = []
    for model, w in report.get("weights", {}).items():
        same = f"weights {model}: {w['run']} (this run and the committed one)" if w["run"] == w["committed"] else \
            f"weights {model}: this run {w['run']}; the committed one {w['committed']}"
        if w["by_design"]:
            same = (f"WEIGHTS DIFFER BY DESIGN: {model}: this run {w['run']}, the committed one {w['committed']}: "
                    f"its numbers are not expected to match (run again with the committed weights, --pretrained yes|no)")
        elif w["unknown"]:
            same += ": unknown weights, so a difference may be the weights"
        lines.append(same)
    return lines


def _what_to_check(report: dict) -> str:
    """The recorded facts that tell two machines apart: torch, CPU or device, threads."""
    def facts(p: dict) -> str:
        return f"torch {p.get('torch', '?')} on {p.get('device', '?')}"

    same = facts(report["run"]) == facts(report["committed"])
    return (f"check first: this run used {facts(report['run'])}, the committed one {facts(report['committed'])}"
            + (" (the same: then a broken install or changed data is more likely)" if same else
               " (other CPU kernels or another torch give other numbers, and training amplifies them)"))


def format_comparison(report: dict) -> str:
    """The comparison as one table (committed, this run, difference, band, verdict) and a closing line."""
    lines = [f"{'model':<8} {'metric':<30} {'committed':>10} {'this run':>10} {'difference':>11} {'band ±':>9}  verdict",
             "-" * 92]
    for r in report["rows"]:
        num = (lambda x: "–" if x is None else f"{x:.4f}")
        diff = "–" if r["difference"] is None else f"{r['difference']:+.4f}"
        lines.append(f"{r['model']:<8} {r['metric']:<30} {num(r['committed']):>10} {num(r['run']):>10} {diff:>11} "
                     f"{num(r['band']):>9}  {r['verdict']}")
    lines += [f"note: {n}" for n in report["notes"]]
    lines += _weights_lines(report)
    counted = {v: sum(r["verdict"] == v for r in report["rows"])
               for v in ("within noise", "differs", BY_DESIGN, "missing", "no band")}
    summary = ", ".join(f"{n} {v}" for v, n in counted.items() if n)
    if report["differs"] and not counted["differs"]:  # every difference lies in a model whose weights differ
        models = sorted({r["model"] for r in report["differs"]})
        lines.append(f"DIFFERS BY DESIGN: {len(report['differs'])} of {len(report['rows'])} numbers lie beyond their "
                     f"band, all of models whose weights differ from the committed run's ({', '.join(models)}): "
                     f"not a failed reproduction, another experiment")
    elif report["differs"]:
        names = ", ".join(f"{r['model']} {r['metric']}" for r in report["differs"][:5])
        lines.append(f"DIFFERS: {len(report['differs'])} of {len(report['rows'])} numbers lie beyond their band ({names}"
                     f"{', ...' if len(report['differs']) > 5 else ''}); {_what_to_check(report)}")
    elif counted["no band"] or counted["missing"]:
        lines.append(f"NOT ALL JUDGED: {summary}; a number without a band has too few test images and no seed spread")
    else:
        lines.append(f"REPRODUCED: all {len(report['rows'])} numbers within noise "
                     f"(band = {NOISE_Z:g} x sqrt(2 x seed sd^2 + test-sampling se^2))")
    return "\n".join(lines)


def spread_summary(values: dict[str, float]) -> dict:
    """``{"values": {seed: v}, "mean", "std" (ddof=1; NaN for one seed), "n"}`` of one metric over seeds."""
    a = np.asarray(list(values.values()), dtype=float)
    return {"values": values, "mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else float("nan"),
            "n": len(a)}

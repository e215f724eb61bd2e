"""The "What we got" paragraphs of notebooks 03–09, built from the results and gated by their noise.

Every claim of a difference ("lower", "better", "rose", "fell") is made only when the difference
exceeds the **noise band**: :data:`NOISE_Z` standard errors of the mean of the per-image
differences, taken on the same test images (a paired comparison; a model against the mean-depth
baseline, one model against another, a model before and after fine-tuning). A difference inside
the band is called "no clear difference", with both numbers and the band beside it. Each text also
says how much a second training seed could move it: where the seed-to-seed spread of the recipe was
measured (``figures/seed_spread.json``, :mod:`depthkit.tools.seeds`; the ``demo`` profile), every band
below includes it (:func:`with_seeds`), so a gap between two models inside the seed spread is "no clear
difference"; without it, the text says it describes **one run** (one seed).

Per-image values come from the stage's own metrics (:func:`depthkit.evaluate.per_image_scores`, the
same per-image values :func:`depthkit.evaluate.evaluate` averages), so the means printed here are the
means it prints; the statistics (mean, standard error, noise band) are :mod:`depthkit.evaluate`'s.
"""
from __future__ import annotations

import functools
import math
import re
from typing import Callable, Mapping, Sequence

import numpy as np

from depthkit.config import Profile
from depthkit.evaluate import MIN_IMAGES, NOISE_Z, Values, as_array, is_clear, mean, noise_band, standard_error
from depthkit.reproduce import REPORT_RESULTS, SEED_SPREAD_FILE, read_figures_json

ALIGNMENT_WORDS = {  # depthkit.stages.NYU_ALIGN -> what the standard metrics are computed after
    "lstsq": "per-image least-squares scale-and-shift alignment",
    "median": "per-image median scaling",
    None: "no alignment (the prediction read as metres)",
}

MODEL_OF = {r["label"].split()[0]: name for name, r in REPORT_RESULTS.items()}  # "LR-ASPP" -> "lraspp" (the texts' labels)


def seed_spread(profile: Profile, folder: str | None = None) -> dict | None:
    """The committed seed-to-seed spread (``figures/seed_spread.json``) when it was measured under ``profile``; else None."""
    spread = read_figures_json(SEED_SPREAD_FILE, folder)
    return spread if spread and spread.get("profile") == profile.name else None


def seed_sd(spread: dict | None, model: str, key: str, minus: str | None = None) -> float:
    """Standard deviation over training seeds of ``model``'s ``key`` (e.g. ``"nyu.normalized_mse"``), or of its
    per-seed difference ``key - minus``; 0.0 when not measured. ``model``: a name or a label ("LR-ASPP")."""
    entry = ((spread or {}).get("models", {}).get(MODEL_OF.get(model, model)) or {})
    values = (entry.get(key) or {}).get("values", {})
    if minus is not None:
        other = (entry.get(minus) or {}).get("values", {})
        values = {k: v - other[k] for k, v in values.items() if k in other}
    return float(np.std(list(values.values()), ddof=1)) if len(values) >= 2 else 0.0


def with_seeds(band: float, *sds: float) -> float:
    """A paired noise band widened by seed spreads: ``hypot(band, NOISE_Z * sqrt(sum sd^2))`` (each a mean's sd over seeds)."""
    return math.hypot(band, NOISE_Z * math.sqrt(sum(sd**2 for sd in sds)))


def _tidy(build: Callable[..., str]) -> Callable[..., str]:
    """A builder whose infinite noise band (too few images) reads as words, not "±inf"."""
    @functools.wraps(build)
    def wrapper(*args, **kwargs) -> str:
        return re.sub(r"noise band ±inf(?: points| %)?|±inf(?: points| %)?", f"too few images (under {MIN_IMAGES}) to estimate the noise",
                      build(*args, **kwargs))
    return wrapper


TEST_SAMPLING = "test sampling"  # a band from the per-image differences only (:func:`depthkit.evaluate.noise_band`)
WITH_SEEDS = "test sampling + seeds"  # that band widened by the measured seed-to-seed spread (:func:`with_seeds`)


def format_band(band: float, fmt: str = ".4f", scale: float = 1.0, unit: str = "", seeds: bool | None = False) -> str:
    """``"±0.0012 (test sampling)"`` (``scale``, ``fmt`` and ``unit`` applied), or words when there were too few images.

    ``seeds``: whether the band includes the seed-to-seed spread (its label says "test sampling + seeds");
    None leaves the label off.
    """
    if not math.isfinite(band):
        return f"not estimated: too few images (under {MIN_IMAGES})"
    label = "" if seeds is None else f" ({WITH_SEEDS if seeds else TEST_SAMPLING})"
    return f"±{scale * band:{fmt}}{unit}{label}"


@_tidy
def compare(name_a: str, a: Values, name_b: str, b: Values, lower_is_better: bool, fmt: str = ".4f",
            scale: float = 1.0, unit: str = "", seed_sds: tuple[float, float] = (0.0, 0.0)) -> str:
    """``a`` against ``b`` in words: which is better, or "no clear difference", each name beside its own number.

    ``seed_sds``: each model's standard deviation over training seeds, added to the paired band (:func:`with_seeds`).
    """
    ma, mb, band = mean(a), mean(b), with_seeds(noise_band(a, b), *seed_sds)
    band_unit = " points" if unit.strip() == "%" else unit  # a difference of percentages is in points
    numbers = (f"{name_a} {scale * ma:{fmt}}{unit} vs {name_b} {scale * mb:{fmt}}{unit}, "
               f"noise band {format_band(band, fmt, scale, band_unit, any(seed_sds))}")
    if not is_clear(ma - mb, band):
        return f"no clear difference between {name_a} and {name_b} ({numbers})"
    winner = name_a if (ma < mb) == lower_is_better else name_b
    return f"**{winner}** is better ({numbers})"


def _one_run(profile: Profile, spread: dict | None = None) -> str:
    if spread:
        seeds = max(len(v) for v in spread.get("seeds", {}).values())
        return (f"The noise bands include the seed-to-seed spread of this recipe, measured over up to {seeds} training "
                "seeds (`figures/seed_spread.json`): a gap inside a band is one another seed could reverse.")
    return (f"This is one run with one seed ({profile.seed}): it shows what happened here, not why, and another seed "
            "can reorder models that are close.")


def _smoke(profile: Profile) -> str:
    return (" Under `smoke` the models saw a couple of dozen images for one epoch: the numbers only show the "
            "mechanics." if profile.name == "smoke" else "")


# --------------------------------------------------------------------------------------------
# 03 and 04: the NYU models against the mean-depth baseline and each other
# --------------------------------------------------------------------------------------------
def _against_baseline(label: str, model: Values, baseline: Values, sd: float = 0.0) -> str:
    m, b, band = mean(model), mean(baseline), with_seeds(noise_band(model, baseline), sd)  # the baseline has no seed
    numbers = f"**{m:.4f}** against {b:.4f} for the mean-depth baseline, noise band {format_band(band, seeds=sd > 0)}"
    if not is_clear(m - b, band):
        return f"{label} reached a test normalized MSE of {numbers}: no clear difference from the baseline"
    if m < b:
        return f"{label} reached a test normalized MSE of {numbers}: **{100 * (1 - m / b):.0f} % lower**"
    return (f"{label} reached a test normalized MSE of {numbers}: **{100 * (m / b - 1):.0f} % higher**, "
            "worse than predicting the average room")


def _validation_trend(history: Mapping[str, list]) -> str:
    epochs, vals = history["epoch"], history["val_normalized_mse"]
    if len(epochs) < 2:
        return "With one epoch there is no validation curve to read."
    best = epochs[vals.index(min(vals))]
    if best == epochs[-1]:
        return (f"Its validation error was lowest at the last of {epochs[-1]} epochs: training had not levelled off, "
                "so more epochs might help.")
    return f"Its validation error was lowest after epoch {best} of {epochs[-1]} (that checkpoint is the one kept)."


@_tidy
def lraspp_nyu(model: Values, baseline: Values, history: Mapping[str, list], profile: Profile, n_train: int,
               report_mse: float | None = None, spread: dict | None = None) -> str:
    """03: LR-ASPP's per-image test normalized MSE against the mean-depth baseline's, and its validation curve."""
    epochs = len(history["epoch"])
    context = {"demo": "The scenes are synthetic rooms, so the number says the pipeline learns, not how it would do on NYU.",
               "report": f"The report measured {report_mse} on real NYU Depth V2 at the same size."
               if report_mse is not None else ""}.get(profile.name, "")
    against = _against_baseline("LR-ASPP", model, baseline, seed_sd(spread, "lraspp", "nyu.normalized_mse"))
    return (f"{against}, after {epochs} epoch(s) on {n_train} {profile.data} training images. "
            f"{_validation_trend(history)} {context} {_one_run(profile, spread)}{_smoke(profile)}").replace("  ", " ")


@_tidy
def unetpp_nyu(scores: Mapping[str, Values], baseline: Values, epochs: Mapping[str, int], frozen: int,
               profile: Profile, n_train: int, spread: dict | None = None) -> str:
    """04: U-Net++ against the baseline and, when it ran, against LR-ASPP on the same test images."""
    sd = {label: seed_sd(spread, label, "nyu.normalized_mse") for label in scores}
    text = _against_baseline("U-Net++", scores["U-Net++"], baseline, sd["U-Net++"]) + ". "
    if "LR-ASPP" in scores:
        text += (f"Against LR-ASPP on the same images: {compare('U-Net++', scores['U-Net++'], 'LR-ASPP', scores['LR-ASPP'], True, seed_sds=(sd['U-Net++'], sd['LR-ASPP']))}. ")
        eu, el = epochs["U-Net++"], epochs["LR-ASPP"]
        text += (f"Both trained {eu} epochs on the same images (U-Net++'s first {frozen} with the encoder frozen), "
                 "so training time does not separate them in this run; " if eu == el else
                 f"They did **not** get the same budget (U-Net++ {eu} epochs, LR-ASPP {el}), so training time is "
                 "mixed into any gap; ")
        text += ("both start from random weights here (no downloads): U-Net++'s 48 M parameters are learned from "
                 f"{n_train} images, while with ImageNet weights (`report` on Colab) its encoder starts out knowing "
                 "edges and textures. " if not profile.pretrained else
                 "the encoders start from pretrained weights where they could be fetched. ")
    return text + _one_run(profile, spread) + _smoke(profile)


# --------------------------------------------------------------------------------------------
# 05: DIW fine-tuning
# --------------------------------------------------------------------------------------------
@_tidy
def diw_finetuning(before: Mapping[str, Values], after: Mapping[str, Values], diw_epochs: Mapping[str, int],
                   n_val: int, profile: Profile, spread: dict | None = None) -> str:
    """05: each model's DIW test accuracy before and after fine-tuning (per-pair correctness, same pairs)."""
    lines, fell, bands = [], [], {}
    for label in before:
        sd = seed_sd(spread, label, "diw.ordinal_accuracy", minus="diw_after_nyu.ordinal_accuracy")
        b, a = mean(before[label]), mean(after[label])
        band = bands[label] = with_seeds(noise_band(after[label], before[label]), sd)
        n = int(np.isfinite(as_array(before[label])).sum())
        if not is_clear(a - b, band):
            change = "no clear difference"
        else:
            change = "rose" if a > b else "fell"
            if a < b:
                fell.append(label)
        lines.append(f"- **{label}**: {100 * b:.1f} % → {100 * a:.1f} % ({100 * (a - b):+.1f} points: {change}; "
                     f"noise band {format_band(band, '.1f', 100, ' points', sd > 0)} on these {n} test pairs).")
    if fell:
        epochs = max(diw_epochs[label] for label in fell)
        why = (f"Fine-tuning lowered the accuracy of {' and '.join(fell)} beyond the noise in this run. Possible "
               f"reasons, from this run's settings: {epochs} DIW epoch(s) at learning rate {profile.budget('diw').lr:g} is "
               "short; the ranking loss sees one pair per image, a much weaker signal per image than a dense depth map; ")
        why += (f"best.pt is picked among {epochs} epochs on only {n_val} validation pairs, so the pick is noisy; "
                if epochs > 1 else f"with one epoch, best.pt is simply that epoch (its {n_val} validation pairs picked nothing); ")
        why += ("and the synthetic DIW-layout scenes come from the same generator as the NYU-layout ones, so the NYU "
                "model already orders them well and there is little left to learn." if profile.data == "synthetic" else
                "and real DIW photos differ from NYU's indoor rooms, so the first steps may trade NYU habits for DIW "
                "ones before paying off.")
    elif any(mean(after[k]) > mean(before[k]) + bands[k] for k in before):
        why = "Where an accuracy moved beyond the noise, it rose."
    else:
        why = "Neither model's accuracy moved beyond the noise: on these pairs, this run cannot tell fine-tuning from no fine-tuning."
    return "\n".join(lines) + "\n\n" + why + " " + _one_run(profile, spread) + _smoke(profile)


@_tidy
def nyu_cost(before: Mapping[str, Values], after: Mapping[str, Values], profile: Profile,
             spread: dict | None = None) -> str:
    """05: each model's NYU test normalized MSE before and after DIW fine-tuning (per image, same images)."""
    parts = []
    for label in before:
        sd = seed_sd(spread, label, "nyu_after_diw.normalized_mse", minus="nyu.normalized_mse")
        b, a, band = mean(before[label]), mean(after[label]), with_seeds(noise_band(after[label], before[label]), sd)
        if is_clear(a - b, band):
            parts.append(f"{label}'s NYU error {'rose' if a > b else 'fell'} from {b:.4f} to {a:.4f} "
                         f"({100 * (a / b - 1):+.0f} %, beyond the noise band {format_band(band, seeds=sd > 0)}).")
        else:
            parts.append(f"{label}'s NYU error went from {b:.4f} to {a:.4f}: no clear difference "
                         f"(noise band {format_band(band, seeds=sd > 0)}).")
    return (" ".join(parts) + " The ranking loss scores only the *order* of two points per image; nothing holds the "
            "rest of the map, or its contrast, to what NYU taught, so dense accuracy is free to drift. Fine-tuning on "
            "both losses at once (or a scale-invariant loss, see `02`) is the usual remedy. " + _one_run(profile, spread)
            + _smoke(profile))


def _order_verdict(m: float, band: float) -> str:
    """Whether a mean per-image correlation says larger = farther, reversed, or neither, against its band."""
    if not math.isfinite(band):
        return "too few images to tell"
    if not is_clear(m, band):
        return "no clear order: its maps neither grow nor shrink with the true depth on the whole"
    if m > 0:
        return "keeps larger = farther on the whole"
    return "**reversed**: on the whole its maps draw near things far (and far things near)"


@_tidy
def depth_order(correlations: Mapping[str, Values]) -> str:
    """05: whether each model's maps still grow with the true depth (larger = farther), from per-image correlations.

    Keys ending in ``" after DIW"`` are read beside the same model's ``" after NYU"`` when it is there: the
    change of the mean correlation is judged against its paired band (the same images), and the images whose
    correlation turned negative are counted, so "keeps larger = farther on the whole" is never said of a map
    whose order clearly weakened.
    """
    parts = []
    for label, r in correlations.items():
        a = as_array(r)
        keep = np.isfinite(a)
        m, band = float(a[keep].mean()), NOISE_Z * standard_error(a[keep])
        verdict = _order_verdict(m, band)
        earlier = correlations.get(label.replace(" after DIW", " after NYU")) if label.endswith(" after DIW") else None
        if earlier is not None:
            b = as_array(earlier)
            both = keep & np.isfinite(b)
            m0, change_band = float(b[both].mean()), noise_band(a[both], b[both])
            turned = int(((b[both] > 0) & (a[both] <= 0)).sum())
            if verdict.startswith("keeps") and is_clear(m - m0, change_band) and m < m0:
                verdict = "still larger = farther on average, but clearly weaker than after NYU"
            verdict += (f"; the mean went {m0:+.2f} → {m:+.2f} ({m - m0:+.2f}, noise band "
                        f"{format_band(change_band, '.2f')}), and {turned} of {int(both.sum())} images whose map "
                        "followed the depth after NYU no longer do")
        parts.append(f"- **{label}**: mean correlation r = {m:+.2f} (noise band {format_band(band, '.2f')}), positive on "
                     f"{int((a[keep] > 0).sum())} of {int(keep.sum())} images: {verdict}.")
    return ("Does each map still say larger = farther? Per image, the correlation between the predicted and the true "
            "depth on the NYU-layout test images (they have a depth map; DIW images do not):\n" + "\n".join(parts))


# --------------------------------------------------------------------------------------------
# 06: the comparison
# --------------------------------------------------------------------------------------------
@_tidy
def report_comparison(nyu: Mapping[str, Values], diw: Mapping[str, Values], baseline_nyu: float,
                      budgets: Mapping[str, tuple[int, int]], profile: Profile, data_kind: str,
                      spread: dict | None = None) -> str:
    """06: the report's two models on the NYU test images and the DIW test pairs, gated by the paired noise and the seeds."""
    (a, b) = list(nyu)[:2]
    sd_nyu = (seed_sd(spread, a, "nyu.normalized_mse"), seed_sd(spread, b, "nyu.normalized_mse"))
    sd_diw = (seed_sd(spread, a, "diw.ordinal_accuracy"), seed_sd(spread, b, "diw.ordinal_accuracy"))
    text = (f"On the NYU-layout test split: {compare(a, nyu[a], b, nyu[b], True, seed_sds=sd_nyu)}; mean-depth baseline "
            f"{baseline_nyu:.4f}. On the DIW-layout test pairs: "
            f"{compare(a, diw[a], b, diw[b], False, '.1f', 100, ' %', seed_sds=sd_diw)}. The report found U-Net++ ahead on both. ")
    if len(set(budgets.values())) == 1:
        nyu_e, diw_e = next(iter(budgets.values()))
        text += (f"Here every model trained {nyu_e} NYU and {diw_e} DIW epoch(s) on the same images, so training time "
                 "does not separate them in this run. ")
    else:
        text += ("The budgets differ (" + ", ".join(f"{n} {e} NYU + {d} DIW epochs" for n, (e, d) in budgets.items())
                 + "), as in the report (LR-ASPP 100 NYU epochs, U-Net++ 10): training time is mixed into any gap. ")
    if data_kind == "synthetic":
        text += "And the data is synthetic: this ranks the models on our rooms, not on NYU or DIW. "
    return text + _one_run(profile, spread) + _smoke(profile)


@_tidy
def parameter_matched(nyu: Mapping[str, Values], diw: Mapping[str, Values], third: str, same_budget: bool,
                      profile: Profile, spread: dict | None = None) -> str:
    """06: architecture (``lraspp`` vs ``third``, same size) and size (``third`` vs ``unetpp``), each model beside its number.

    The report models' bands include their seed spread; the third model's seed spread is not measured.
    """
    def both(x: str, y: str) -> str:
        sds = {key: tuple(seed_sd(spread, m, key) for m in (x, y)) for key in ("nyu.normalized_mse", "diw.ordinal_accuracy")}
        return (f"NYU: {compare(f'`{x}`', nyu[x], f'`{y}`', nyu[y], True, seed_sds=sds['nyu.normalized_mse'])}; "
                f"DIW: {compare(f'`{x}`', diw[x], f'`{y}`', diw[y], False, '.1f', 100, ' %', seed_sds=sds['diw.ordinal_accuracy'])}")

    return (f"Same size, different architecture: {both('lraspp', third)}. "
            f"Same architecture, 15× the size: {both(third, 'unetpp')}. "
            + ("All three trained the same epochs, so training time does not separate them. " if same_budget else
               "The epochs differ between them (see above), which muddies both comparisons. ")
            + "The third model's own seed-to-seed spread is not measured, so its comparisons count only half of the seed noise; "
            + "one seed of it cannot settle architecture against size: it shows how to ask the question. "
            + _one_run(profile, spread) + _smoke(profile))


@_tidy
def scene_types(errors: Mapping[str, Values], groups: Sequence[str], profile: Profile) -> str:
    """06: per model, the scene type with the highest mean error, and whether it stands out from the next one."""
    labels, parts = sorted(set(groups)), []
    for name, err in errors.items():
        e = as_array(err)
        stats = {lab: (mean(e[[g == lab for g in groups]]), standard_error(e[[g == lab for g in groups]]),
                       groups.count(lab)) for lab in labels}
        order = sorted(labels, key=lambda lab: stats[lab][0], reverse=True)
        top = order[0]
        m, se, n = stats[top]
        part = f"`{name}` **{top}** ({m:.4f}, {n} image{'' if n == 1 else 's'})"
        if len(order) > 1:
            m2, se2, n2 = stats[order[1]]
            band = NOISE_Z * math.hypot(se, se2)
            part += (f", clearly above {order[1]} ({m2:.4f}; noise band {format_band(band)})" if is_clear(m - m2, band) else
                     f", but no clear difference from {order[1]} ({m2:.4f}; noise band {format_band(band)})")
        parts.append(part)
    return ("Highest mean error per model: " + "; ".join(parts) + ". Groups with few images swing the most"
            + (", and under `smoke` every group holds one or two images." if profile.name == "smoke" else ".")
            + " " + _one_run(profile))


# --------------------------------------------------------------------------------------------
# 07: your own image
# --------------------------------------------------------------------------------------------
@_tidy
def own_image(result: Mapping, source: str, margin: float | None, share: float | None, n_clear: int,
              profile: Profile, photo: str = "a real basement storage room", rule: float | None = None) -> str:
    """07: the model's verdict on the default pair and, with a measured depth, its share of clear pairs beside the position rule's.

    ``rule``: the share of the same clear pairs that "the lower point is closer" orders right
    (:func:`depthkit.metrics.position_rule_accuracy`). No noise band: the pairs all come from one
    photo and overlap, so they are not independent draws, and a band would need many photos.
    """
    if result.get("truth") is None:
        return (f"On {source} the model says **{result['verdict']}** for the default points (no measured depth to "
                "check it against). Move the sliders below to probe it.")
    right = result["truth"] == result["verdict"]
    text = (f"On {source}, the Kinect puts A at {result['ka']:.2f} m and B at {result['kb']:.2f} m, and the model "
            f"{'agrees' if right else 'disagrees'}: {result['verdict']}, by {100 * abs(margin):.0f} % of its predicted "
            "depth range. That pair was picked for it, though: ")
    if n_clear:
        text += f"of the {n_clear} random clear pairs on this photo the model orders **{100 * share:.0f} %** right"
        if rule is not None:
            side = "more" if share > rule else "fewer" if share < rule else "as many"
            text += (f", {side} than the rule \"the lower point is closer\", which looks at no pixel and orders "
                     f"**{100 * rule:.0f} %** of the same pairs right (a coin: 50 %)")
        text += (". No noise band: every pair comes from this one photo and the pairs share its points and regions, "
                 "so they are not independent draws; only many photos (resampling photos, not pairs) could say how "
                 "far either number carries. ")
    text += {"smoke": "Under `smoke` the model has learned next to nothing.",
             "demo": f"It was trained only on synthetic rooms full of boxes: on {photo} it can only follow the cues "
                     "the two share (floor rising to the horizon, walls, darker distance), and the share above says "
                     "how far that carries on this one photo.",
             "report": "It was trained on real NYU Depth V2; this frame comes from NYU's raw sequences, not from "
                       "the labeled images it trained on, but rooms like it are in them."}.get(profile.name, "")
    return text


# --------------------------------------------------------------------------------------------
# 08: depth cues
# --------------------------------------------------------------------------------------------
@_tidy
def depth_cues(nmse: Mapping[tuple[str, str], Values], correct: Mapping[tuple[str, str], Values],
               models: Mapping[str, str], baseline: float, profile: Profile) -> str:
    """08: per model, which cue's removal changes the depth error and the pair accuracy beyond the noise.

    ``nmse[(cue, model)]`` are per-scene normalized MSEs, ``correct[(cue, model)]`` per-scene shares of
    pairs ordered right (or per-pair 0/1), both on the same scenes and pairs for every cue; cue
    ``"none"`` is the reference.
    """
    cues = sorted({c for c, _ in nmse if c != "none"})
    lines = []
    for name, label in models.items():
        ref_e, ref_c = nmse[("none", name)], correct[("none", name)]
        d = {c: mean(nmse[(c, name)]) - mean(ref_e) for c in cues}
        band_d = {c: noise_band(nmse[(c, name)], ref_e) for c in cues}
        a = {c: mean(ref_c) - mean(correct[(c, name)]) for c in cues}
        band_a = {c: noise_band(ref_c, correct[(c, name)]) for c in cues}
        hurt = [c for c in cues if d[c] > 0 and is_clear(d[c], band_d[c])]
        cost = [c for c in cues if a[c] > 0 and is_clear(a[c], band_a[c])]
        worst_d, worst_a = max(cues, key=d.get), max(cues, key=a.get)
        dense = (", ".join(f"removing **{c}** raises its normalized MSE by {d[c]:+.4f} (noise band {format_band(band_d[c])})"
                           for c in sorted(hurt, key=d.get, reverse=True)) if hurt else
                 f"no removal changes its depth error beyond the noise (largest change: {worst_d}, {d[worst_d]:+.4f}, "
                 f"noise band {format_band(band_d[worst_d])})")
        ordinal = (", ".join(f"removing **{c}** costs {100 * a[c]:.1f} points of pair accuracy (noise band "
                             f"{format_band(band_a[c], '.1f', 100, ' points')})" for c in sorted(cost, key=a.get, reverse=True)) if cost else
                   f"no removal changes its pair accuracy beyond the noise (largest drop: {worst_a}, "
                   f"{100 * a[worst_a]:.1f} points, noise band {format_band(band_a[worst_a], '.1f', 100, ' points')})")
        lines.append(f"- **{label}**: with every cue, normalized MSE {mean(ref_e):.4f} (mean-depth baseline "
                     f"{baseline:.4f}) and {100 * mean(ref_c):.1f} % of the pairs right; {dense}; {ordinal}.")
    honest = {"demo": "The models were trained on the same generator, with every cue present in every training picture: "
                      "a cue they rely on is one whose absence moves them off what they saw.",
              "report": "These models were trained on real NYU Depth V2 and DIW and are tested here on synthetic rooms, "
                        "which they never saw: read the *changes* between conditions, not the levels."}
    return ("\n".join(lines) + "\n\nEach noise band compares two conditions scene by scene (the same scenes and pairs); "
            "the chart's error bars show each mean's own spread, a different band. "
            + (honest[profile.name] + " " if profile.name in honest else "") + "A cue whose removal changes nothing beyond "
            "the noise is not proven useless: the network may get the same information from another cue (haze and "
            "texture density both grow with distance). And perspective, occlusion and relative size were never "
            "removed: every model still sees the room's converging outline. " + _one_run(profile) + _smoke(profile)).strip()


# --------------------------------------------------------------------------------------------
# 09: after the report (SIlog, a transformer at the same size)
# --------------------------------------------------------------------------------------------
def _test_sampling(n: int) -> str:
    return (f"Each noise band covers **test sampling** only: ±{NOISE_Z:g} standard errors of the mean of the per-image "
            f"differences on the same {n} test images (a paired band).")


def _seed_note(spread: dict | None, reference: str, label: str, gap: float) -> str:
    sd = seed_sd(spread, reference, "nyu.normalized_mse")
    if not sd:
        return "How far another training seed would move either run is not measured here."
    reach = with_seeds(0.0, sd, sd)  # two runs, each with the reference's seed spread: 03's formula, no test sampling
    return (f"Training seeds add their own noise: {label}'s test normalized MSE varies by a standard deviation of "
            f"{sd:.4f} between seeds of the committed recipe (`figures/seed_spread.json`; the other run's seed spread is "
            f"not measured), so two runs may differ by about {reach:.4f} from the seed alone: this gap of {abs(gap):.4f} is "
            + ("**within** that, and another seed could reverse it." if abs(gap) <= reach else "beyond that."))


@_tidy
def silog_comparison(silog: Values, nmse: Values, baseline: Values, lam: float, epochs: int, profile: Profile,
                     spread: dict | None = None) -> str:
    """09: LR-ASPP trained on SIlog against LR-ASPP trained on the report's normalized MSE, per image on the same test images."""
    n = int(np.isfinite(as_array(nmse)).sum())
    text = (f"Both LR-ASPP runs trained {epochs} epoch(s) on the same images with the same optimizer and schedule, and "
            f"are scored here by the report's normalized MSE (the SIlog run's output, depth in metres, is min–max "
            f"normalised like any prediction): {compare(f'SIlog (λ = {lam:g})', silog, 'normalized MSE', nmse, True)}. "
            f"Against the mean-depth baseline: {_against_baseline('the SIlog run', silog, baseline)}; "
            f"{_against_baseline('the normalized-MSE run', nmse, baseline)}. ")
    text += (f"{_test_sampling(n)} {_seed_note(spread, 'lraspp', 'LR-ASPP', mean(silog) - mean(nmse))} The metric "
             "favours the run trained on it: normalized MSE is the normalized-MSE run's own training loss, so a tie here "
             "is not a loss for SIlog. ")
    return text + _one_run(profile) + _smoke(profile)  # the bands hold no seed spread: one run each


@_tidy
def transformer_comparison(scores: Mapping[str, Values], params: Mapping[str, int], baseline: Values,
                           epochs: Mapping[str, int], profile: Profile, spread: dict | None = None) -> str:
    """09: a vision transformer against the CNN of its size (first two entries), each beside the baseline, on the same images."""
    (a, b) = list(scores)[:2]
    n = int(np.isfinite(as_array(scores[b])).sum())
    ratio = params[a] / params[b]
    text = (f"{a} ({params[a] / 1e6:.2f} M parameters) against {b} ({params[b] / 1e6:.2f} M, so {ratio:.2f}× as many): "
            f"{compare(a, scores[a], b, scores[b], True)}. Against the mean-depth baseline: "
            f"{_against_baseline(a, scores[a], baseline)}; {_against_baseline(b, scores[b], baseline)}. ")
    text += ("Both trained the same epochs on the same images, so training time does not separate them; " if
             epochs[a] == epochs[b] else f"They did **not** train the same epochs ({a} {epochs[a]}, {b} {epochs[b]}); ")
    text += ("both start from random weights (no downloads), a setting that does not favour a transformer: attention "
             "builds in fewer assumptions about images than convolution does, and transformers are usually pretrained "
             "on large data sets. So this compares the two architectures learning from scratch on these images, not "
             "pretrained ones. "
             if not profile.pretrained else "the encoders start from ImageNet weights where they could be fetched. ")
    return (text + _test_sampling(n) + " " + _seed_note(spread, "lraspp", b, mean(scores[a]) - mean(scores[b])) + " "
            + _one_run(profile) + _smoke(profile))  # the bands hold no seed spread: one run each

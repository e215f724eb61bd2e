"""The "What we got" builders make no claim their numbers do not support.

Crafted per-image results: a change inside the noise, a drop beyond it, a rise beyond it, one
DIW epoch, one seed. Inside the noise the text must say "no clear difference" and none of the
words of a claim; beyond it, the claim must be there and point the right way.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from depthkit import evaluate as dk_eval
from depthkit import metrics
from depthkit.course import narrative
from depthkit.config import get_profile

CLAIMS = ("better", "worse", "lost", "fell", "gained", "rose", "lower", "higher", "lucky", "comes from")
DEMO = get_profile("demo")
N = 200


def words(text: str) -> set[str]:
    """The claim words present in ``text`` (whole words, any case)."""
    return {w for w in CLAIMS if re.search(rf"\b{w}\b", text, re.IGNORECASE)}


def per_image(mean: float, spread: float = 0.01, seed: int = 0) -> np.ndarray:
    """``N`` per-image values with the given mean (exactly) and spread."""
    x = np.random.default_rng(seed).normal(0, 1, N)
    return mean + spread * (x - x.mean()) / x.std()


def correct(accuracy: float, seed: int = 0) -> np.ndarray:
    """``N`` per-pair 0/1 correctness values, a share ``accuracy`` of them right."""
    out = np.zeros(N)
    out[np.random.default_rng(seed).permutation(N)[:round(accuracy * N)]] = 1
    return out


BASE = per_image(0.050, seed=1)
DROP = BASE - 0.010  # every image 0.01 lower: far beyond the noise
RISE = BASE + 0.010


def test_noise_band_is_two_paired_standard_errors():
    a, b = per_image(0.05, seed=1), per_image(0.04, seed=2)
    assert dk_eval.noise_band(a, b) == pytest.approx(2 * (a - b).std(ddof=1) / np.sqrt(N))
    assert dk_eval.noise_band(a, a + 0.01) == pytest.approx(0.0, abs=1e-12)  # the same shift on every image
    with pytest.raises(ValueError, match="same images"):
        dk_eval.noise_band(a, b[:10])


def test_compare_inside_the_noise_claims_nothing():
    text = narrative.compare("A", BASE + np.random.default_rng(5).normal(0, 0.01, N), "B", BASE, True)
    assert "no clear difference" in text and not words(text), text


@pytest.mark.parametrize("lower_is_better", [True, False])
def test_compare_names_each_model_beside_its_own_number(lower_is_better):
    text = narrative.compare("lraspp", RISE, "unetpp_mnv2", BASE, lower_is_better)
    assert f"lraspp {RISE.mean():.4f}" in text and f"unetpp_mnv2 {BASE.mean():.4f}" in text, text
    winner = "unetpp_mnv2" if lower_is_better else "lraspp"
    assert f"**{winner}** is better" in text, text


def noisy(values: np.ndarray, seed: int) -> np.ndarray:
    """``values`` plus zero-mean noise much larger than any shift: a change inside the noise."""
    e = np.random.default_rng(seed).normal(0, 0.02, N)
    return values + e - e.mean() + 0.0005


def test_lraspp_inside_noise_against_the_baseline():
    history = {"epoch": [1, 2, 3], "val_normalized_mse": [0.06, 0.05, 0.055]}
    text = narrative.lraspp_nyu(noisy(BASE, 7), BASE, history, DEMO, n_train=300)
    assert "no clear difference" in text and not words(text), text
    assert "one run" in text and "seed" in text, text


def test_lraspp_beyond_noise_says_lower_and_by_how_much():
    history = {"epoch": [1], "val_normalized_mse": [0.06]}
    text = narrative.lraspp_nyu(DROP, BASE, history, DEMO, n_train=300)
    assert "% lower" in text and "no clear difference" not in text, text
    assert "one epoch" in text.lower(), text
    worse = narrative.lraspp_nyu(RISE, BASE, history, DEMO, n_train=300)
    assert "% higher" in worse and "worse" in worse, worse


def test_unetpp_gap_is_not_called_causal():
    text = narrative.unetpp_nyu({"U-Net++": DROP, "LR-ASPP": BASE}, BASE + 0.01, {"U-Net++": 7, "LR-ASPP": 7}, 1,
                                DEMO, 300)
    assert "**U-Net++** is better" in text and "comes from" not in text, text
    assert "one run" in text, text
    inside = narrative.unetpp_nyu({"U-Net++": noisy(BASE, 3), "LR-ASPP": BASE}, noisy(BASE, 4),
                                  {"U-Net++": 7, "LR-ASPP": 7}, 1, DEMO, 300)
    assert inside.count("no clear difference") == 2 and not words(inside), inside


def test_diw_finetuning_inside_noise_one_epoch():
    before = {"LR-ASPP": correct(0.64, 1), "U-Net++": correct(0.69, 2)}
    after = {"LR-ASPP": correct(0.65, 3), "U-Net++": correct(0.67, 4)}  # different pairs right: noise ±~9 points
    text = narrative.diw_finetuning(before, after, diw_epochs={'LR-ASPP': 1, 'U-Net++': 1}, n_val=120, profile=DEMO)
    assert text.count("no clear difference") == 2 and not words(text), text
    assert "one seed" in text, text


def test_diw_finetuning_drop_beyond_noise_with_one_epoch_speaks_of_no_lucky_epoch():
    b = correct(0.70, 1)
    a = b.copy()
    a[np.flatnonzero(b)[:40]] = 0  # 40 of the right pairs now wrong, nothing else changes: 20 points down
    text = narrative.diw_finetuning({"U-Net++": b}, {"U-Net++": a}, diw_epochs={'LR-ASPP': 1, 'U-Net++': 1}, n_val=120, profile=DEMO)
    assert "fell" in text and "lowered" in text and "lucky" not in text, text
    assert "with one epoch" in text, text
    rise = narrative.diw_finetuning({"U-Net++": a}, {"U-Net++": b}, diw_epochs={'U-Net++': 3}, n_val=120, profile=DEMO)
    assert "rose" in rise and "fell" not in rise and "lowered" not in rise, rise


def test_nyu_cost_inside_and_beyond_noise():
    text = narrative.nyu_cost({"LR-ASPP": BASE}, {"LR-ASPP": noisy(BASE, 9)}, DEMO)
    assert "no clear difference" in text and not words(text), text
    text = narrative.nyu_cost({"LR-ASPP": BASE}, {"LR-ASPP": RISE}, DEMO)
    assert "rose" in text and "no clear difference" not in text, text


def test_parameter_matched_names_each_model_beside_its_own_number():
    nyu = {"lraspp": BASE + 0.008, "unetpp_mnv2": BASE, "unetpp": noisy(BASE, 11)}
    diw = {"lraspp": correct(0.656, 1), "unetpp_mnv2": correct(0.686, 2), "unetpp": correct(0.672, 3)}
    text = narrative.parameter_matched(nyu, diw, "unetpp_mnv2", True, DEMO)
    assert f"`lraspp` {nyu['lraspp'].mean():.4f} vs `unetpp_mnv2` {BASE.mean():.4f}" in text, text
    assert "**`unetpp_mnv2`** is better" in text, text
    assert text.count("no clear difference") == 3, text  # mnv2 vs unetpp on NYU, and both DIW comparisons


def test_report_comparison_inside_noise_claims_nothing():
    text = narrative.report_comparison({"LR-ASPP": BASE, "U-Net++": noisy(BASE, 12)},
                                       {"LR-ASPP": correct(0.656, 1), "U-Net++": correct(0.672, 2)}, 0.05,
                                       {"LR-ASPP": (7, 1), "U-Net++": (7, 1)}, DEMO, "synthetic")
    assert text.count("no clear difference") == 2 and not words(text), text


def test_own_image_share_beside_the_position_rule_without_a_pair_band():
    """Catches: a band that treats the overlapping pairs of one photo as independent, or a verdict against a coin."""
    result = {"verdict": "A is farther than B", "truth": "A is farther than B", "ka": 3.0, "kb": 2.4}
    text = narrative.own_image(result, "photo", 0.9, 0.64, 1415, DEMO, rule=0.79)
    assert "**64 %**" in text and "**79 %**" in text and "fewer than the rule" in text, text
    assert "basement" in text and "kitchen" not in text, text
    assert "noise band ±" not in text and "than a coin" not in text and "No noise band" in text, text
    assert "more than the rule" in narrative.own_image(result, "photo", 0.9, 0.85, 1415, DEMO, rule=0.79)


def test_depth_cues_inside_noise_claims_nothing_and_a_real_drop_is_named():
    models = {"m": "M"}
    nmse = {("none", "m"): BASE, ("haze", "m"): noisy(BASE, 13), ("shading", "m"): RISE}
    right = correct(0.75, 1)
    wrong = right.copy()
    wrong[np.flatnonzero(right)[:30]] = 0
    acc = {("none", "m"): right, ("haze", "m"): right, ("shading", "m"): wrong}
    text = narrative.depth_cues(nmse, acc, models, 0.05, DEMO)
    assert "removing **shading** raises" in text and "removing **haze**" not in text, text
    assert "removing **shading** costs" in text, text
    only_noise = narrative.depth_cues({("none", "m"): BASE, ("haze", "m"): noisy(BASE, 14)},
                                      {("none", "m"): right, ("haze", "m"): right}, models, 0.05, DEMO)
    assert only_noise.count("no removal changes") == 2 and not words(only_noise), only_noise


def test_depth_order_reports_a_reversed_map():
    depth = torch.linspace(1, 5, 64).view(1, 1, 8, 8).repeat(12, 1, 1, 1)  # a ramp: near at the top, far at the bottom
    noise = 0.05 * torch.randn(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    r_keep = metrics.depth_correlation(depth + noise, depth)
    r_flip = metrics.depth_correlation(-depth + noise, depth)
    assert (r_keep > 0.9).all() and (r_flip < -0.9).all()
    text = narrative.depth_order({"LR-ASPP after DIW": r_flip, "U-Net++ after DIW": r_keep})
    assert "**LR-ASPP after DIW**: mean correlation r = -" in text and "**reversed**" in text, text
    assert text.count("keeps larger = farther") == 1, text
    unclear = narrative.depth_order({"m": np.array([0.3, -0.3, 0.2, -0.25] * 3)})
    assert "no clear order" in unclear and "keeps" not in unclear and "reversed" not in unclear, unclear


@pytest.mark.parametrize("stage", ["nyu", "diw"])
def test_per_image_scores_average_to_what_evaluate_prints(stage, nyu_splits, diw_splits):
    from depthkit.models import build_model
    from depthkit.evaluate import evaluate, evaluate_baseline

    torch.manual_seed(0)
    model = build_model("lraspp")
    split = (nyu_splits if stage == "nyu" else diw_splits)["test"]
    values = dk_eval.per_image_scores(model, split, stage, device="cpu")
    for key, mean in evaluate(model, split, stage, device="cpu").items():
        assert len(values[key]) == len(split)
        assert dk_eval.mean(values[key]) == pytest.approx(mean, rel=1e-9), key
    if stage == "nyu":
        assert dk_eval.mean(dk_eval.baseline_per_image(nyu_splits["train"], split)) == pytest.approx(
            evaluate_baseline(nyu_splits["train"], split)["normalized_mse"], rel=1e-9)


def test_too_few_images_never_make_a_difference():
    a = np.array([0.05, 0.06, 0.04])
    text = narrative.nyu_cost({"LR-ASPP": a}, {"LR-ASPP": a + 0.02}, DEMO)  # the same shift on 3 images: std 0
    assert "no clear difference" in text and "too few images" in text and "inf" not in text and not words(text), text
    assert narrative.format_band(dk_eval.noise_band(a, a + 0.02)).startswith("not estimated")
    assert narrative.format_band(0.00123, ".1f", 1000, " ‰", seeds=None) == "±1.2 ‰"


def test_no_builder_prints_an_infinite_band():
    few = {"LR-ASPP": np.array([1.0, 0.0, 0.0])}
    text = narrative.diw_finetuning(few, {"LR-ASPP": np.array([1.0, 1.0, 1.0])}, {"LR-ASPP": 1}, 3, DEMO)
    order = narrative.depth_order({"m": np.array([0.4, 0.5, 0.3])})
    for t in (text, order):
        assert "inf" not in t.replace("information", "") and not words(t), t
    assert "too few images to tell" in order, order


# ---- the seed-to-seed spread -------------------------------------------------------------------------


def _spread(sd: float) -> dict:
    """A seed_spread.json record for the demo profile: both report models' test metrics over 3 seeds, spread ``sd``."""
    from depthkit.tools.compare import spread_summary

    def over_seeds(centre: float) -> dict:
        return spread_summary({"0": centre, "1": centre + sd, "2": centre - sd})

    keys = ("nyu.normalized_mse", "diw.ordinal_accuracy", "diw_after_nyu.ordinal_accuracy", "nyu_after_diw.normalized_mse")
    return {"profile": "demo", "seeds": {"lraspp": [0, 1, 2], "unetpp": [0, 1, 2]},
            "models": {m: {k: over_seeds(0.05) for k in keys} for m in ("lraspp", "unetpp")}}


def test_a_gap_inside_the_seed_spread_is_no_clear_difference():
    """Catches: model comparisons gated by the paired test noise alone, which one seed per model cannot support."""
    gap = DROP.mean() - BASE.mean()
    assert "**U-Net++** is better" in narrative.unetpp_nyu({"U-Net++": DROP, "LR-ASPP": BASE}, BASE + 0.01,
                                                           {"U-Net++": 7, "LR-ASPP": 7}, 1, DEMO, 300)
    wide = narrative.unetpp_nyu({"U-Net++": DROP, "LR-ASPP": BASE}, BASE + 0.01, {"U-Net++": 7, "LR-ASPP": 7}, 1,
                                DEMO, 300, spread=_spread(abs(gap)))
    assert "no clear difference between U-Net++ and LR-ASPP" in wide, wide
    assert "one run with one seed" not in wide and "3 training seeds" in wide, wide
    band = narrative.with_seeds(dk_eval.noise_band(DROP, BASE), abs(gap), abs(gap))
    assert f"noise band ±{band:.4f}" in wide, wide
    narrow = narrative.unetpp_nyu({"U-Net++": DROP, "LR-ASPP": BASE}, BASE + 0.01, {"U-Net++": 7, "LR-ASPP": 7}, 1,
                                  DEMO, 300, spread=_spread(abs(gap) / 100))
    assert "**U-Net++** is better" in narrow, narrow


def test_seed_sd_of_a_difference_comes_from_the_per_seed_differences():
    spread = _spread(0.01)
    same = spread["models"]["lraspp"]
    assert narrative.seed_sd(spread, "LR-ASPP", "nyu.normalized_mse") == pytest.approx(0.01)
    # after - before moves together on every seed here: the fine-tuning effect itself does not vary
    assert narrative.seed_sd(spread, "LR-ASPP", "diw.ordinal_accuracy", minus="diw_after_nyu.ordinal_accuracy") == 0.0
    same["diw.ordinal_accuracy"]["values"] = {"0": 0.6, "1": 0.7, "2": 0.5}
    assert narrative.seed_sd(spread, "lraspp", "diw.ordinal_accuracy", minus="diw_after_nyu.ordinal_accuracy") \
        == pytest.approx(np.std([0.55, 0.64, 0.46], ddof=1))
    assert narrative.seed_sd(None, "LR-ASPP", "nyu.normalized_mse") == 0.0
    assert narrative.seed_spread(get_profile("smoke"), folder="/nonexistent") is None


def test_depth_order_says_a_weakened_order_is_weaker():
    """05's case: r 0.85 after NYU, 0.45 after DIW, a few images reversed: not "keeps larger = farther on the whole"."""
    rng = np.random.default_rng(3)
    before = np.clip(0.85 + 0.05 * rng.standard_normal(96), -1, 1)
    after = 0.45 + 0.25 * rng.standard_normal(96)
    text = narrative.depth_order({"U-Net++ after NYU": before, "U-Net++ after DIW": after})
    line = next(l for l in text.splitlines() if "after DIW" in l)
    assert "keeps larger = farther" not in line and "clearly weaker" in line, line
    assert f"{before.mean():+.2f} → {after.mean():+.2f}" in line, line
    turned = int(((before > 0) & (after <= 0)).sum())
    assert turned > 0 and f"{turned} of 96 images" in line, line
    assert "(test sampling)" in line, line
    same = narrative.depth_order({"m after NYU": before, "m after DIW": before + 0.001 * rng.standard_normal(96)})
    assert "keeps larger = farther on the whole" in same.splitlines()[-1], same


def test_every_band_says_what_it_covers():
    """A band is labelled "test sampling", or "test sampling + seeds" when a measured seed spread widened it."""
    plain = narrative.compare("A", DROP, "B", BASE, True)
    seeded = narrative.compare("A", DROP, "B", BASE, True, seed_sds=(0.001, 0.001))
    assert "(test sampling)" in plain and "seeds" not in plain, plain
    assert "(test sampling + seeds)" in seeded, seeded
    assert narrative.format_band(0.0044) == "±0.0044 (test sampling)"
    assert narrative.format_band(0.0063, seeds=True) == "±0.0063 (test sampling + seeds)"

"""The seed-to-seed spread: seeds that really differ, the committed run as seed 0, a record the comparison reads."""
from __future__ import annotations

import json

import numpy as np
import pytest

from depthkit.config import figures_dir, get_profile, runs_dir
from depthkit.fingerprint import code_fingerprint
from depthkit.runs import run_dir
from depthkit.tools import seeds


def test_seed_k_has_a_training_seed_and_a_run_folder_of_its_own():
    demo = get_profile("demo")
    assert seeds.seed_profile(demo, 0) is demo  # seed 0: the committed run itself
    three = seeds.seed_profile(demo, 3)
    assert three.training_seed == 3 and three.seed == demo.seed  # the data and its splits stay
    assert run_dir(three, "lraspp", "nyu").parent.name == "demo-seed3" != run_dir(demo, "lraspp", "nyu").parent.name


def test_the_seeds_argument_names_each_model_and_asks_for_two_or_more():
    assert seeds.parse_seeds("lraspp=5,unetpp=3") == {"lraspp": 5, "unetpp": 3}
    for bad in ("lraspp=1", "vgg=3", "lraspp", ""):
        with pytest.raises(Exception, match="MODEL=N|no MODEL"):
            seeds.parse_seeds(bad)


@pytest.mark.slow  # two smoke reproductions of LR-ASPP
def test_two_seeds_of_lraspp_write_a_spread_the_comparison_reads(capsys):
    assert seeds.main(["--profile", "smoke", "--seeds", "lraspp=2"]) == 0
    record = json.loads((figures_dir() / "seed_spread.json").read_text())
    assert record["fingerprint"] == code_fingerprint(get_profile("smoke")) and record["profile"] == "smoke"
    nmse = record["models"]["lraspp"]["nyu.normalized_mse"]
    values = list(nmse["values"].values())
    assert set(nmse["values"]) == {"0", "1"} and values[0] != values[1]  # another seed, other weights
    assert nmse["mean"] == pytest.approx(np.mean(values)) and nmse["std"] == pytest.approx(np.std(values, ddof=1))
    assert (runs_dir() / "smoke-seed1" / "lraspp_nyu" / "best.pt").exists()
    assert not (figures_dir() / "results.json").exists()  # each seed's figures stay beside its runs
    assert record["cost"]["seconds"] > 0 and "wrote" in capsys.readouterr().out

"""Measurement tools, above the core: what a run costs and whether it reproduced, measured rather than guessed.

* ``bench`` - ``fit``'s training step: images/s, data wait, FLOP rate, memory (``python -m depthkit bench``);
* ``rehearse`` - the ``report`` profile at full size, a few steps per stage (``python -m depthkit rehearse``);
* ``gpucheck`` - the CUDA path's targets in one table (``make gpu-check``);
* ``memory`` - peak memory of a process tree;
* ``seeds`` - the seed-to-seed spread of a reproduction (``make seeds``, ``figures/seed_spread.json``);
* ``compare`` - a run's numbers against the committed ones, with noise bands (``python -m depthkit compare``).

Each uses the core (``depthkit.*``); the core never imports from here.
"""

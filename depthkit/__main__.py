"""``python -m depthkit``: see :mod:`depthkit.cli`."""
import sys

from depthkit.cli import main

sys.exit(main())

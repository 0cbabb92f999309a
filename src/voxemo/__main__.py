"""``python -m voxemo``: the command line (:mod:`voxemo.apps.cli`)."""

import sys

from voxemo.apps.cli import main

sys.exit(main())

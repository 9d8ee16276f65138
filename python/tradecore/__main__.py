"""``python -m tradecore``: the same command line as the ``tradecore`` script."""

import sys

from tradecore.cli import main

sys.exit(main())

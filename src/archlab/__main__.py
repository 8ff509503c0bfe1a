"""``python -m archlab`` is the ``archlab`` command."""

import sys

from archlab.cli import main

sys.exit(main())

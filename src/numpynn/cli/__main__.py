"""``python -m numpynn.cli``: the same as the ``numpynn`` command (and ``python -m numpynn``)."""

import sys

from .main import main

sys.exit(main())

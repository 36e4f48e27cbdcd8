"""``python -m skiff`` is the ``skiff`` command."""

import sys

from skiff.cli.main import main

sys.exit(main())

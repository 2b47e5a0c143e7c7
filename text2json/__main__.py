"""``python -m text2json`` is the ``text2json`` console script."""

import sys

from text2json.cli import main

sys.exit(main())

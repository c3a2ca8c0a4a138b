"""`python -m edgesnn` is the `edgesnn` command."""

import sys

from edgesnn.cli import main

sys.exit(main())

"""``python -m jan``: the same CLI as the ``jan`` script."""

import sys

from jan.host.cli import main

sys.exit(main())

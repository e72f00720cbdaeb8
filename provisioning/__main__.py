"""`python -m provisioning ...` = `kiosk provision ...` (usable before the CLI hook exists)."""

import sys

from provisioning.cli import main

sys.exit(main())

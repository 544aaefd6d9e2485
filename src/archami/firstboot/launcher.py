"""Installed as /usr/lib/archami/firstboot.py: puts the agent package beside it on sys.path and runs it.

The units start it with `python3 -I -S` (isolated: no PYTHONPATH, no site, no script directory on
sys.path), so the directory is added here explicitly and nothing from the environment can shadow the agent.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# archami_agent exists only in the image, beside this file.
from archami_agent.main import main  # type: ignore[import-not-found]

sys.exit(main())

"""`python3 -m archami.firstboot.agent ...` on a host (tests); in the image the launcher calls main()."""

import sys

from .main import main

sys.exit(main())

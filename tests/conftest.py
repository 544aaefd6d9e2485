"""Settings every test shares.

Ctrl-C reaches the processes the tests start: a shell without job control starts a background command
(`make test &`, `nohup … &`, some CI runners) with SIGINT ignored, every process after it inherits that,
and Python keeps an inherited SIG_IGN. The tests that interrupt a build or a VM owner with SIGINT
then see it ignored and wait for nothing. A Python handler here is reset to the default by exec, so the
processes the tests start get SIGINT as a terminal's Ctrl-C delivers it.
"""

from __future__ import annotations

import signal

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

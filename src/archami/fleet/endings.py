"""How a held SSH session ended when its instance rebooted, judged from what the OpenSSH client reported.

- clean: the server ended the session in order; the client exited with the remote exit status (0-254), or
  255 with nothing to say (the remote command was killed by a signal and sshd reported it);
- eof: the TCP connection was closed without the session being closed ('Connection to HOST closed by
  remote host.'): sshd was killed during shutdown but the network was still up to carry its FIN. This is
  what an orderly reboot looks like;
- reset: the connection was torn down by a reset or a broken pipe: nobody closed it in time, and the peer
  (often the rebooted kernel, which has never heard of it) refused it afterwards;
- hang: the connection was still open at our bound, or ssh's own keepalive gave up on a silent server.

reset and hang are the seed's failure: the guest went down without closing the connection (sshd outlived
the network). `FAILED_ENDINGS` is what the fleet counts as failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

Ending = Literal["clean", "eof", "reset", "hang"]
ENDINGS: tuple[Ending, ...] = get_args(Ending)
FAILED_ENDINGS: frozenset[Ending] = frozenset({"reset", "hang"})

SSH_FAILURE = 255  # the OpenSSH client's own error exit, as opposed to a relayed remote exit status

_HANG = re.compile(r"Timeout, server .* not responding", re.IGNORECASE)
_RESET = re.compile(r"reset by peer|Connection reset|Broken pipe", re.IGNORECASE)
_EOF = re.compile(r"closed by remote host|Connection closed by|connection closed", re.IGNORECASE)
# Lines ssh prints at LogLevel=INFO that say nothing about how the connection ended.
_NOISE = re.compile(r"^(Warning: Permanently added|Connection to \S+ closed\.$)")


@dataclass(frozen=True)
class Classified:
    ending: Ending
    exit_status: int | None  # the remote command's exit status when the session closed cleanly
    message: str  # the client's last meaningful stderr line ('' if none)


def last_message(stderr: str) -> str:
    lines = [line.strip() for line in stderr.replace("\r", "\n").splitlines()]
    meaningful = [line for line in lines if line and not _NOISE.match(line)]
    return meaningful[-1] if meaningful else ""


def classify(exit_code: int | None, stderr: str) -> Classified:
    """`exit_code` of the ssh client, None when it was still connected at our deadline and we killed it."""
    message = last_message(stderr)
    text = stderr.replace("\r", "\n")
    if exit_code is None or _HANG.search(text):
        return Classified("hang", None, message or "still connected at the deadline")
    if exit_code != SSH_FAILURE:
        return Classified("clean", exit_code, message)
    if _RESET.search(text):
        return Classified("reset", None, message)
    if _EOF.search(text):
        return Classified("eof", None, message)
    if not message:
        return Classified("clean", SSH_FAILURE, message)  # exit-signal relayed; nothing went wrong in transport
    # An error text we do not know: a transport failure, and not an orderly one.
    return Classified("reset", None, message)

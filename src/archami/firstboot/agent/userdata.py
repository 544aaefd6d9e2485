"""User-data: a '#!' script runs once per instance with its output logged; anything else is cloud-init's."""

from __future__ import annotations

import os
import subprocess

from .context import Context
from .files import now_iso
from .settings import USER_DATA_LOG


def run_script(ctx: Context, script: str, instance_id: str) -> str:
    """Run the queued user-data script (it starts with '#!'), output appended to the log; what happened."""
    log_path = ctx.path(USER_DATA_LOG)
    os.makedirs(os.path.dirname(log_path), mode=0o755, exist_ok=True)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LANG": "C.UTF-8", "ARCHAMI_INSTANCE_ID": instance_id}
    if not ctx.live:
        env["ARCHAMI_ROOT"] = ctx.root  # tests: where the script's "/" would be
    with open(log_path, "ab") as log:
        os.fchmod(log.fileno(), 0o600)  # a script's output may hold secrets
        log.write(f"--- {now_iso()} user-data of {instance_id}\n".encode())
        log.flush()
        try:
            result = subprocess.run(
                [script], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=ctx.root, env=env, timeout=ctx.settings.user_data_timeout, check=False,
            )
            status = f"exit status {result.returncode}"
        except subprocess.TimeoutExpired:
            status = f"killed after {ctx.settings.user_data_timeout:.0f} s"
        except OSError as exc:
            status = f"could not run: {exc.strerror or exc}"
        log.write(f"--- {now_iso()} {status}\n".encode())
    return f"script ran: {status}"

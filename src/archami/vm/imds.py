"""A local IMDSv2 server: EC2's instance metadata service, served on loopback for boot tests and the agent.

It speaks the protocol as EC2 does (token PUT with a TTL, 401 for requests without a valid token, 403 for a
token PUT that carries X-Forwarded-For, directory listings as plain text) and can misbehave on purpose
(`FaultPlan`) so the first-boot agent's retries, timeouts and refusals are tested against real sockets.
The standard library's threaded HTTP server is enough: this is a test fixture with a handful of clients.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Union

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TTL = 21600
# Metadata API versions EC2 lists at "/"; every one serves the same tree here.
API_VERSIONS = ("1.0", "2007-01-19", "2009-04-04", "2011-01-01", "2016-09-02", "2021-07-15", "latest")

Tree = dict[str, Union[str, "Tree"]]


@dataclass(frozen=True)
class ImdsConfig:
    """What the instance is: every value the metadata service reports."""

    instance_id: str = "i-0123456789abcdef0"
    region: str = "us-east-1"
    availability_zone: str = "us-east-1a"
    hostname: str = "ip-10-0-0-15.ec2.internal"
    local_ipv4: str = "10.0.0.15"
    public_keys: dict[str, str] = field(default_factory=dict)  # key-pair name -> OpenSSH public key line
    user_data: bytes | None = None
    account_id: str = "123456789012"
    image_id: str = "ami-0123456789abcdef0"
    instance_type: str = "t3.micro"
    mac: str = "0a:00:00:00:00:01"
    architecture: str = "x86_64"
    ipv6: str | None = None
    vpc_id: str = "vpc-0123456789abcdef0"
    subnet_id: str = "subnet-0123456789abcdef0"
    subnet_cidr: str = "10.0.0.0/24"
    vpc_cidr: str = "10.0.0.0/16"
    security_groups: tuple[str, ...] = ("default",)
    pending_time: str = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class FaultPlan:
    """Ways the server misbehaves, for the agent's fault-mode tests. The default misbehaves in no way."""

    imdsv1_only: bool = False  # no token endpoint (404) and GETs served without a token, like old IMDS
    token_delay: float = 0.0  # seconds the token PUT takes before answering
    invalidate_tokens_after: int | None = None  # after N metadata GETs every issued token is revoked (401)
    public_keys_404: bool = False
    errors_500_first: int = 0  # the first N requests (any path) answer 500
    refuse_for: float = 0.0  # seconds the port refuses connections after start() (the server starts late)
    truncate_first: int = 0  # the first N GET bodies promise more bytes than they send, then close
    truncate_always: bool = False
    bad_keys: bool = False  # public-keys/ also lists malformed keys, a duplicate of each key and a bad entry
    huge_user_data: int = 0  # serve a '#!' user-data script of this many bytes instead of the configured one


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    status: int
    with_token: bool


def metadata_tree(config: ImdsConfig) -> Tree:
    """The /latest/meta-data/ tree as EC2 shows it; nested dicts are directories."""
    interface: Tree = {
        "device-number": "0",
        "interface-id": "eni-0123456789abcdef0",
        "local-hostname": config.hostname,
        "local-ipv4s": config.local_ipv4,
        "mac": config.mac,
        "owner-id": config.account_id,
        "security-group-ids": "sg-0123456789abcdef0",
        "security-groups": "\n".join(config.security_groups),
        "subnet-id": config.subnet_id,
        "subnet-ipv4-cidr-block": config.subnet_cidr,
        "vpc-id": config.vpc_id,
        "vpc-ipv4-cidr-block": config.vpc_cidr,
        "vpc-ipv4-cidr-blocks": config.vpc_cidr,
    }
    if config.ipv6:
        interface["ipv6s"] = config.ipv6
    keys: Tree = {}  # EC2 leaves public-keys/ out entirely when the instance has no key pair
    for index, (name, line) in enumerate(config.public_keys.items()):
        keys[f"{index}={name}"] = {"openssh-key": line if line.endswith("\n") else line + "\n"}
    tree: Tree = {
        "ami-id": config.image_id,
        "ami-launch-index": "0",
        "ami-manifest-path": "(unknown)",
        "block-device-mapping": {"ami": "/dev/xvda", "root": "/dev/xvda"},
        "hostname": config.hostname,
        "instance-action": "none",
        "instance-id": config.instance_id,
        "instance-life-cycle": "on-demand",
        "instance-type": config.instance_type,
        "local-hostname": config.hostname,
        "local-ipv4": config.local_ipv4,
        "mac": config.mac,
        "network": {"interfaces": {"macs": {config.mac: interface}}},
        "placement": {
            "availability-zone": config.availability_zone,
            "region": config.region,
        },
        "profile": "default-hvm",
        "reservation-id": "r-0123456789abcdef0",
        "security-groups": "\n".join(config.security_groups),
        "services": {"domain": "amazonaws.com", "partition": "aws"},
    }
    if keys:
        tree["public-keys"] = keys
    return dict(sorted(tree.items()))


def _bad_keys(config: ImdsConfig) -> Tree:
    """The configured keys, each twice, plus lines an agent must refuse, and an entry that is no index."""
    lines = list(config.public_keys.values())
    lines = [*lines, *lines, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC", "not a key at all",
             'command="/bin/sh" ' + (lines[0] if lines else "ssh-ed25519 AAAA")]
    keys: Tree = {f"{index}=key-{index}": {"openssh-key": line + "\n"} for index, line in enumerate(lines)}
    keys["garbage"] = "x"
    return keys


def identity_document(config: ImdsConfig) -> str:
    return json.dumps(
        {
            "accountId": config.account_id,
            "architecture": config.architecture,
            "availabilityZone": config.availability_zone,
            "billingProducts": None,
            "devpayProductCodes": None,
            "marketplaceProductCodes": None,
            "imageId": config.image_id,
            "instanceId": config.instance_id,
            "instanceType": config.instance_type,
            "kernelId": None,
            "pendingTime": config.pending_time,
            "privateIp": config.local_ipv4,
            "ramdiskId": None,
            "region": config.region,
            "version": "2017-09-30",
        },
        indent=2,
    )


def _listing(directory: Mapping[str, object]) -> str:
    # EC2 lists entries one per line, directories with a trailing slash, no final newline. A public key
    # entry "0=name" is a directory too but is listed without the slash, as EC2 does.
    lines = []
    for name, value in directory.items():
        is_dir = isinstance(value, dict) and "=" not in name
        lines.append(name + "/" if is_dir else name)
    return "\n".join(lines)


def _lookup(tree: Tree, parts: list[str]) -> str | Tree | None:
    node: str | Tree = tree
    for part in parts:
        if not isinstance(node, dict):
            return None
        if part in node:
            node = node[part]
            continue
        # public-keys/0/ addresses the entry listed as "0=name"
        matches = [value for key, value in node.items() if key.split("=", 1)[0] == part and "=" in key]
        if not matches:
            return None
        node = matches[0]
    return node


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "EC2ws"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the request log is kept in ImdsServer.requests instead of stderr."""

    def do_PUT(self) -> None:
        owner = self.server.owner
        if owner.fault_first_500():
            return self._reply(500, "Internal Server Error")
        if self.path != TOKEN_PATH or owner.faults.imdsv1_only:
            return self._reply(404 if owner.faults.imdsv1_only else 405, "Not Found")
        if self.headers.get("X-Forwarded-For") is not None:
            return self._reply(403, "Forbidden")
        ttl_text = self.headers.get(TTL_HEADER)
        try:
            ttl = int(ttl_text) if ttl_text is not None else 0
        except ValueError:
            ttl = 0
        if not 1 <= ttl <= MAX_TTL:
            return self._reply(400, "Bad Request")
        if owner.faults.token_delay:
            time.sleep(owner.faults.token_delay)
        token = owner.issue_token(ttl)
        self._reply(200, token, extra={TTL_HEADER: str(ttl)})

    def do_GET(self) -> None:
        owner = self.server.owner
        if owner.fault_first_500():
            return self._reply(500, "Internal Server Error")
        if self.path == TOKEN_PATH:
            return self._reply(405, "Method Not Allowed", extra={"Allow": "PUT"})
        if not owner.faults.imdsv1_only and not owner.token_valid(self.headers.get(TOKEN_HEADER)):
            return self._reply(401, "Unauthorized")
        status, body, content_type = owner.resolve(self.path)
        truncate = status == 200 and owner.fault_truncate()
        self._reply(status, body, content_type=content_type, truncate=truncate)

    def _reply(
        self,
        status: int,
        body: str | bytes,
        *,
        content_type: str = "text/plain",
        extra: dict[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.server.owner.record(self.command, self.path, status, self.headers.get(TOKEN_HEADER) is not None)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        # A truncated reply promises more than it sends, then drops the connection mid-body.
        self.send_header("Content-Length", str(len(data) + (64 if truncate else 0)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if truncate else data)
        if truncate:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ImdsServer

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up mid-reply (a truncated body, a timed-out agent) are expected, not errors."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Server6(_Server):
    address_family = socket.AF_INET6


class ImdsServer:
    """Serve `config` on host:port (port 0 picks a free one); start()/stop() or use as a context manager."""

    def __init__(
        self, config: ImdsConfig, host: str = "127.0.0.1", port: int = 0, faults: FaultPlan | None = None
    ) -> None:
        self._config = config
        self.faults = faults or FaultPlan()
        self.host = host
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self._requests: list[RequestRecord] = []
        self._gets = 0
        self._truncated = 0
        self._failed = 0
        server_class = _Server6 if ":" in host else _Server
        # Bind now so .port is known, but only listen() once refuse_for has passed: a bound socket that is
        # not listening answers connection attempts with RST, exactly a server that has not started yet.
        self._httpd = server_class((host, port), _Handler, bind_and_activate=False)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._serving = threading.Event()
        try:
            self._httpd.server_bind()
        except OSError:
            self._httpd.server_close()
            raise

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def config(self) -> ImdsConfig:
        with self._lock:
            return self._config

    def set_config(self, config: ImdsConfig) -> None:
        """Change what the instance is (a new instance-id and keys between two boots of one disk)."""
        with self._lock:
            self._config = config

    def update(self, **changes: object) -> None:
        """Shorthand for set_config(replace(config, ...))."""
        with self._lock:
            self._config = replace(self._config, **changes)  # type: ignore[arg-type]

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def start(self) -> ImdsServer:
        if not self.faults.refuse_for:
            self._activate()  # listening before start() returns: no race with the first client
        self._thread = threading.Thread(target=self._serve, name=f"imds-{self.port}", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        if self.faults.refuse_for:
            if self._stopping.wait(self.faults.refuse_for):
                return
            self._activate()
        self._httpd.serve_forever(poll_interval=0.05)

    def _activate(self) -> None:
        self._httpd.server_activate()
        self._serving.set()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            if self._serving.is_set():
                self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> ImdsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- called from handler threads -------------------------------------------------------------------

    def record(self, method: str, path: str, status: int, with_token: bool) -> None:
        with self._lock:
            self._requests.append(RequestRecord(method, path, status, with_token))

    def issue_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(40)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl
        return token

    def token_valid(self, token: str | None) -> bool:
        with self._lock:
            self._gets += 1
            limit = self.faults.invalidate_tokens_after
            if limit is not None and self._gets > limit and self._gets - 1 == limit:
                self._tokens.clear()  # revoked mid-run: the client must fetch a new token
            expiry = self._tokens.get(token or "")
            return expiry is not None and expiry > time.monotonic()

    def fault_first_500(self) -> bool:
        with self._lock:
            if self._failed < self.faults.errors_500_first:
                self._failed += 1
                return True
            return False

    def fault_truncate(self) -> bool:
        with self._lock:
            if self.faults.truncate_always or self._truncated < self.faults.truncate_first:
                self._truncated += 1
                return True
            return False

    def resolve(self, path: str) -> tuple[int, str | bytes, str]:
        """Answer a GET path: (status, body, content type)."""
        config = self.config
        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        if not parts:
            return 200, "\n".join(API_VERSIONS), "text/plain"
        if parts[0] not in API_VERSIONS:
            return 404, "Not Found", "text/plain"
        rest = parts[1:]
        if not rest:
            top = ["dynamic", "meta-data"] + (["user-data"] if config.user_data is not None else [])
            return 200, "\n".join(top), "text/plain"
        if rest == ["user-data"] and self.faults.huge_user_data:
            head = b"#!/bin/sh\necho huge user-data\n"
            return 200, head + b"#" * max(0, self.faults.huge_user_data - len(head)), "application/octet-stream"
        if rest == ["user-data"]:
            if config.user_data is None:
                return 404, "Not Found", "text/plain"
            return 200, config.user_data, "application/octet-stream"
        if rest[0] == "dynamic":
            dynamic: Tree = {"instance-identity": {"document": identity_document(config)}}
            node = _lookup(dynamic, rest[1:])
        elif rest[0] == "meta-data":
            if self.faults.public_keys_404 and rest[1:2] == ["public-keys"]:
                return 404, "Not Found", "text/plain"
            tree = metadata_tree(config)
            if self.faults.bad_keys:
                tree["public-keys"] = _bad_keys(config)
            node = _lookup(tree, rest[1:])
        else:
            node = None
        if node is None:
            return 404, "Not Found", "text/plain"
        if isinstance(node, dict):
            return 200, _listing(node), "text/plain"
        content_type = "application/json" if rest[-1] == "document" else "text/plain"
        return 200, node, content_type

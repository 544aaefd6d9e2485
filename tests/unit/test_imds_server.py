"""The local IMDSv2 server speaks EC2's protocol: tokens, TTLs, refusals, listings, fault modes."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest

from archami.vm.imds import TOKEN_HEADER, TTL_HEADER, FaultPlan, ImdsConfig, ImdsServer

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBS72FDJm5LdY/JnUUKSLLm4v4Ik2Q19XIn/Jl0T1PIz alice@laptop"
CONFIG = ImdsConfig(
    instance_id="i-0aaaaaaaaaaaaaaa1",
    region="eu-west-1",
    availability_zone="eu-west-1b",
    hostname="ip-10-1-2-3.eu-west-1.compute.internal",
    local_ipv4="10.1.2.3",
    public_keys={"alice": KEY, "bob": KEY.replace("alice@laptop", "bob")},
    user_data=b"#!/bin/sh\necho hi\n",
    image_id="ami-0bbbbbbbbbbbbbbb1",
    instance_type="m5.large",
)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


# Some containers run without IPv6 even on loopback; the test says so instead of failing for it.
needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")


def call(server: ImdsServer, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def token(server: ImdsServer, ttl: str = "60") -> str:
    status, body = call(server, "PUT", "/latest/api/token", {TTL_HEADER: ttl})
    assert status == 200
    return body.decode()


def get(server: ImdsServer, path: str) -> tuple[int, bytes]:
    return call(server, "GET", path, {TOKEN_HEADER: token(server)})


@pytest.fixture
def server() -> Iterator[ImdsServer]:
    with ImdsServer(CONFIG) as running:
        yield running


@pytest.mark.parametrize("ttl", ["0", "21601", "-5", "soon", ""])
def test_token_ttl_out_of_range_is_400(server: ImdsServer, ttl: str) -> None:
    assert call(server, "PUT", "/latest/api/token", {TTL_HEADER: ttl})[0] == 400


def test_token_without_ttl_header_is_400(server: ImdsServer) -> None:
    assert call(server, "PUT", "/latest/api/token")[0] == 400


@pytest.mark.parametrize("ttl", ["1", "21600"])
def test_token_ttl_bounds_accepted(server: ImdsServer, ttl: str) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    conn.request("PUT", "/latest/api/token", headers={TTL_HEADER: ttl})
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader(TTL_HEADER) == ttl
    assert len(response.read()) >= 32


def test_forwarded_token_request_is_403(server: ImdsServer) -> None:
    status, _ = call(server, "PUT", "/latest/api/token", {TTL_HEADER: "60", "X-Forwarded-For": "10.0.0.9"})
    assert status == 403


def test_imdsv1_request_is_401(server: ImdsServer) -> None:
    assert call(server, "GET", "/latest/meta-data/instance-id")[0] == 401
    assert call(server, "GET", "/latest/meta-data/instance-id", {TOKEN_HEADER: "forged"})[0] == 401
    assert server.requests[-1].status == 401


def test_token_expires(server: ImdsServer) -> None:
    short = token(server, "1")
    assert call(server, "GET", "/latest/meta-data/instance-id", {TOKEN_HEADER: short})[0] == 200
    time.sleep(1.2)
    assert call(server, "GET", "/latest/meta-data/instance-id", {TOKEN_HEADER: short})[0] == 401


def test_get_on_token_path_is_405(server: ImdsServer) -> None:
    assert call(server, "GET", "/latest/api/token")[0] == 405


def test_values(server: ImdsServer) -> None:
    assert get(server, "/latest/meta-data/instance-id") == (200, b"i-0aaaaaaaaaaaaaaa1")
    assert get(server, "/latest/meta-data/placement/region") == (200, b"eu-west-1")
    assert get(server, "/latest/meta-data/placement/availability-zone") == (200, b"eu-west-1b")
    assert get(server, "/latest/meta-data/local-hostname")[1] == CONFIG.hostname.encode()
    assert get(server, "/latest/meta-data/local-ipv4")[1] == b"10.1.2.3"
    assert get(server, "/latest/meta-data/ami-id")[1] == b"ami-0bbbbbbbbbbbbbbb1"
    assert get(server, "/latest/meta-data/instance-type")[1] == b"m5.large"
    assert get(server, "/latest/user-data") == (200, b"#!/bin/sh\necho hi\n")
    assert get(server, "/latest/meta-data/no-such-thing")[0] == 404


def test_listings_as_ec2_shows_them(server: ImdsServer) -> None:
    status, body = get(server, "/latest/meta-data/")
    entries = body.decode().split("\n")
    assert status == 200 and not body.endswith(b"\n")
    for name in ("ami-id", "instance-id", "instance-type", "hostname", "local-hostname", "local-ipv4", "mac"):
        assert name in entries
    for directory in ("placement/", "public-keys/", "network/", "block-device-mapping/"):
        assert directory in entries
    assert entries == sorted(entries)
    assert get(server, "/latest/meta-data/public-keys/")[1] == b"0=alice\n1=bob"
    assert get(server, "/latest/meta-data/public-keys/1/")[1] == b"openssh-key"
    assert get(server, "/latest/meta-data/public-keys/0/openssh-key")[1] == (KEY + "\n").encode()
    assert get(server, "/latest/meta-data/placement")[1] == b"availability-zone\nregion"
    assert get(server, "/latest/")[1] == b"dynamic\nmeta-data\nuser-data"
    versions = get(server, "/")[1].decode().split("\n")
    assert versions[0] == "1.0" and versions[-1] == "latest"
    assert get(server, "/2021-07-15/meta-data/instance-id")[1] == b"i-0aaaaaaaaaaaaaaa1"


def test_network_interface_tree(server: ImdsServer) -> None:
    mac = CONFIG.mac
    assert get(server, "/latest/meta-data/network/interfaces/macs/")[1] == f"{mac}/".encode()
    listing = get(server, f"/latest/meta-data/network/interfaces/macs/{mac}/")[1].decode().split("\n")
    assert {"device-number", "local-ipv4s", "subnet-id", "vpc-id", "mac"} <= set(listing)
    assert get(server, f"/latest/meta-data/network/interfaces/macs/{mac}/local-ipv4s")[1] == b"10.1.2.3"


def test_identity_document(server: ImdsServer) -> None:
    assert get(server, "/latest/dynamic/instance-identity/")[1] == b"document"
    document = json.loads(get(server, "/latest/dynamic/instance-identity/document")[1])
    assert document["instanceId"] == CONFIG.instance_id
    assert document["region"] == "eu-west-1"
    assert document["availabilityZone"] == "eu-west-1b"
    assert document["accountId"] == CONFIG.account_id
    assert document["imageId"] == CONFIG.image_id


def test_no_keys_no_user_data() -> None:
    with ImdsServer(ImdsConfig(public_keys={}, user_data=None)) as server:
        assert "public-keys/" not in get(server, "/latest/meta-data/")[1].decode().split("\n")
        assert get(server, "/latest/meta-data/public-keys/")[0] == 404
        assert get(server, "/latest/user-data")[0] == 404
        assert get(server, "/latest/")[1] == b"dynamic\nmeta-data"


def test_set_config_between_boots(server: ImdsServer) -> None:
    server.update(instance_id="i-0ccccccccccccccc2", public_keys={"carol": KEY})
    assert get(server, "/latest/meta-data/instance-id")[1] == b"i-0ccccccccccccccc2"
    assert get(server, "/latest/meta-data/public-keys/")[1] == b"0=carol"


@needs_ipv6
def test_ipv6_loopback() -> None:
    with ImdsServer(CONFIG, host="::1") as server:
        assert server.url.startswith("http://[::1]:")
        assert get(server, "/latest/meta-data/instance-id")[1] == b"i-0aaaaaaaaaaaaaaa1"


def test_request_log(server: ImdsServer) -> None:
    get(server, "/latest/meta-data/mac")
    put, got = server.requests[-2:]
    assert (put.method, put.path, put.status, put.with_token) == ("PUT", "/latest/api/token", 200, False)
    assert (got.method, got.path, got.status, got.with_token) == ("GET", "/latest/meta-data/mac", 200, True)


# --- fault modes ----------------------------------------------------------------------------------------


def test_fault_imdsv1_only() -> None:
    with ImdsServer(CONFIG, faults=FaultPlan(imdsv1_only=True)) as server:
        assert call(server, "PUT", "/latest/api/token", {TTL_HEADER: "60"})[0] == 404
        assert call(server, "GET", "/latest/meta-data/instance-id") == (200, b"i-0aaaaaaaaaaaaaaa1")


def test_fault_first_requests_fail_with_500() -> None:
    with ImdsServer(CONFIG, faults=FaultPlan(errors_500_first=2)) as server:
        assert call(server, "PUT", "/latest/api/token", {TTL_HEADER: "60"})[0] == 500
        assert call(server, "PUT", "/latest/api/token", {TTL_HEADER: "60"})[0] == 500
        assert get(server, "/latest/meta-data/instance-id")[0] == 200


def test_fault_tokens_revoked_after_n_gets() -> None:
    with ImdsServer(CONFIG, faults=FaultPlan(invalidate_tokens_after=2)) as server:
        kept = token(server)
        headers = {TOKEN_HEADER: kept}
        assert call(server, "GET", "/latest/meta-data/mac", headers)[0] == 200
        assert call(server, "GET", "/latest/meta-data/mac", headers)[0] == 200
        assert call(server, "GET", "/latest/meta-data/mac", headers)[0] == 401
        assert get(server, "/latest/meta-data/mac")[0] == 200  # a fresh token works again


def test_fault_public_keys_404() -> None:
    with ImdsServer(CONFIG, faults=FaultPlan(public_keys_404=True)) as server:
        assert get(server, "/latest/meta-data/public-keys/")[0] == 404
        assert get(server, "/latest/meta-data/public-keys/0/openssh-key")[0] == 404
        assert get(server, "/latest/meta-data/instance-id")[0] == 200


def test_fault_slow_token() -> None:
    with ImdsServer(CONFIG, faults=FaultPlan(token_delay=0.5)) as server:
        started = time.monotonic()
        token(server)
        assert time.monotonic() - started >= 0.5


def test_fault_truncated_body_promises_more_than_it_sends() -> None:
    with ImdsServer(CONFIG, faults=FaultPlan(truncate_first=1)) as server:
        valid = token(server)
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(f"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n{TOKEN_HEADER}: {valid}\r\n\r\n"
                         .encode())
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
        length = int(lengths[0])
        assert len(body) < length
        with pytest.raises(http.client.IncompleteRead):
            conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
            server.faults = FaultPlan(truncate_always=True)
            conn.request("GET", "/latest/meta-data/instance-id", headers={TOKEN_HEADER: valid})
            conn.getresponse().read()


def test_fault_refuses_connections_until_it_starts() -> None:
    with ImdsServer(CONFIG, faults=FaultPlan(refuse_for=0.8)) as server:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((server.host, server.port), timeout=2).close()
        time.sleep(1.0)
        assert get(server, "/latest/meta-data/instance-id")[0] == 200


def test_stop_while_still_refusing_is_prompt() -> None:
    server = ImdsServer(CONFIG, faults=FaultPlan(refuse_for=30)).start()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2


def test_fault_bad_keys_listing() -> None:
    with ImdsServer(CONFIG, faults=FaultPlan(bad_keys=True)) as server:
        listing = get(server, "/latest/meta-data/public-keys/")[1].decode().split("\n")
        assert listing == [f"{i}=key-{i}" for i in range(7)] + ["garbage"]
        assert get(server, "/latest/meta-data/public-keys/2/openssh-key")[1] == (KEY + "\n").encode()
        assert get(server, "/latest/meta-data/public-keys/5/openssh-key")[1] == b"not a key at all\n"


def test_fault_huge_user_data() -> None:
    with ImdsServer(CONFIG, faults=FaultPlan(huge_user_data=5 * 2**20)) as server:
        status, body = get(server, "/latest/user-data")
        assert status == 200 and body.startswith(b"#!/bin/sh\n") and len(body) == 5 * 2**20

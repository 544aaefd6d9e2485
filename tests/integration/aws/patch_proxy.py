"""A loopback proxy in front of moto that forwards every call and can rewrite chosen answers: fields moto
drops are added (as AWS would return them), or a field is made wrong, to test a reader of the answers.

EC2 answers are XML (query protocol): `ec2_patches[Action]` gets each `<item>` of the answer's first item
list (imagesSet, launchPermission, createVolumePermission) and edits it in place. SSM answers are JSON:
`ssm_patches[Target]` edits the decoded document."""

from __future__ import annotations

import http.client
import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "content-length"}
ItemPatch = Callable[[ET.Element, dict[str, str]], None]  # (the answer's element, the request's form)


def namespace(element: ET.Element) -> str:
    """The element's XML namespace as "{uri}" (moto's differs from AWS's by a trailing slash), or ""."""
    return element.tag[: element.tag.index("}") + 1] if element.tag.startswith("{") else ""


def child(item: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in item if c.tag.rsplit("}", 1)[-1] == name), None)


def add(parent: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(parent, f"{namespace(parent)}{name}")


def set_field(item: ET.Element, name: str, value: str | None) -> None:
    """Set (or with None remove) a direct child element of an answer item."""
    element = child(item, name)
    if value is None:
        if element is not None:
            item.remove(element)
        return
    if element is None:
        element = add(item, name)
    element.text = value


class PatchProxy:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.ec2_patches: dict[str, list[ItemPatch]] = {}
        self.ssm_patches: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length", 0) or 0)
                body = self.rfile.read(length) if length else b""
                connection = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                reply = answer.read()
                reply_headers = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_HEADERS]
                connection.close()
                if answer.status == 200:
                    reply = proxy.rewrite(self.headers.get("X-Amz-Target", ""), body, reply)
                self.send_response(answer.status)
                for k, v in reply_headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rewrite(self, target: str, body: bytes, reply: bytes) -> bytes:
        if target:
            patches = self.ssm_patches.get(target.rsplit(".", 1)[-1], [])
            if not patches:
                return reply
            document = json.loads(reply)
            for patch in patches:
                patch(document)
            return json.dumps(document).encode()
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        patches_for = self.ec2_patches.get(form.get("Action", ""), [])
        if not patches_for:
            return reply
        root = ET.fromstring(reply)
        ET.register_namespace("", namespace(root).strip("{}"))
        for patch in patches_for:
            patch(root, form)
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)

    def clear(self) -> None:
        self.ec2_patches.clear()
        self.ssm_patches.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def each_image(patch: Callable[[ET.Element], None]) -> ItemPatch:
    """A DescribeImages patch applied to every image of the answer."""
    def apply(root: ET.Element, form: dict[str, str]) -> None:
        images = child(root, "imagesSet")
        for item in images if images is not None else []:
            patch(item)
    return apply

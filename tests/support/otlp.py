"""A small OTLP/HTTP trace receiver for tests: it decodes what exporters post to /v1/traces
(protobuf, ``opentelemetry-proto``) into ``Span`` records, and prints a trace as a tree."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

# opentelemetry.proto.trace.v1.Span.SpanKind, by number.
KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


@dataclass(frozen=True)
class Span:
    """One received span: ids in lower-case hex (``parent_id`` empty for a root)."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status: int

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    return getattr(value, which) if which else None


def decode(body: bytes) -> list[Span]:
    """The spans of one ExportTraceServiceRequest."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=KINDS.get(span.kind, str(span.kind)),
                        service=str(resource.get("service.name", "?")),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        status=span.status.code,
                    )
                )
    return spans


@dataclass
class Receiver:
    """``Receiver().start()`` listens on 127.0.0.1 (``url`` is what OTEL_EXPORTER_OTLP_ENDPOINT
    takes); every span posted to it lands in ``spans``."""

    spans: list[Span] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.spans.extend(decode(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def received(self) -> list[Span]:
        with self._lock:
            return list(self.spans)


def is_statement(span: Span) -> bool:
    """A database statement's span (SQLAlchemy's instrumentation)."""
    return "db.system" in span.attributes or "db.system.name" in span.attributes


def tree(spans: Iterable[Span]) -> str:
    """The spans as an indented tree, children in start order, one line each: name, process,
    duration, the attempt of a retried delivery, and how many database statements ran directly
    inside it (their own spans are left out)."""
    spans = sorted(spans, key=lambda span: span.start_ns)
    ids = {span.span_id for span in spans}
    children: dict[str, list[Span]] = {}
    statements: dict[str, int] = {}
    for span in spans:
        if is_statement(span):
            statements[span.parent_id] = statements.get(span.parent_id, 0) + 1
            continue
        children.setdefault(span.parent_id if span.parent_id in ids else "", []).append(span)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for span in children.get(parent, []):
            extra = ""
            if (attempt := span.attributes.get("shoeshop.attempt", 1)) != 1:
                extra += f"  attempt {attempt}"
            if count := statements.get(span.span_id):
                extra += f"  ({count} SQL)"
            label = f"{'  ' * depth}{span.name}"
            lines.append(f"{label:<54} {span.service:<22} {span.duration_ms:7.1f} ms{extra}")
            walk(span.span_id, depth + 1)

    walk("", 0)
    return "\n".join(lines)

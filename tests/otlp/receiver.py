"""An OTLP/HTTP trace receiver for the tests: decodes each ExportTraceServiceRequest with the
official protobuf definitions (PyPI `opentelemetry-proto`) and writes one JSON line per span.

Usage: receiver.py --out FILE [--port N]

Prints `{"listening": PORT}` on stdout once it accepts connections. Each span becomes
`{"service", "trace_id", "span_id", "parent_span_id", "name", "kind", "attributes", "links",
"start_ns", "end_ns"}` (each link `{"trace_id", "span_id"}`) in FILE, ids in lower-case hex (the parent is "" for a root span).
Anything but a POST to /v1/traces with a protobuf body that decodes gets 400 or 404, so a
malformed export shows as a failure in the sender's counters, not as silence.
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def attribute_value(value):
    """The Python value of an OTLP AnyValue."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [attribute_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: attribute_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def spans_of(request):
    """Every span of one export request, flattened with its service's name."""
    for resource_spans in request.resource_spans:
        resource = {kv.key: attribute_value(kv.value) for kv in resource_spans.resource.attributes}
        service = resource.get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "service": service,
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": span.kind,
                    "attributes": {kv.key: attribute_value(kv.value) for kv in span.attributes},
                    "links": [
                        {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()}
                        for link in span.links
                    ],
                    "start_ns": span.start_time_unix_nano,
                    "end_ns": span.end_time_unix_nano,
                }


class Receiver(BaseHTTPRequestHandler):
    out = None
    lock = threading.Lock()

    def do_POST(self):
        if self.path != "/v1/traces":
            self.answer(404, b"")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.headers.get("Content-Type") != "application/x-protobuf":
            self.answer(400, b"")
            return
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError:
            self.answer(400, b"")
            return
        lines = [json.dumps(span) + "\n" for span in spans_of(request)]
        with self.lock:
            self.out.write("".join(lines))
            self.out.flush()
        self.answer(200, ExportTraceServiceResponse().SerializeToString())

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    Receiver.out = open(args.out, "a", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Receiver)
    print(json.dumps({"listening": server.server_address[1]}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

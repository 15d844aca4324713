#!/usr/bin/env python3
"""Interop client: a VRS Federation node as seen from Python's grpcio (C-core, BoringSSL).

Speaks to one running node over mutual TLS 1.3 with the demo coordinator's certificate and
signing key, the way a coordinator written in another language would:

- standard gRPC health (grpc.health.v1) and server reflection (v1alpha, and v1 by path);
- the reflected descriptor of vrs.federation.v2 equals the one compiled here from proto/;
- Describe and its signed audit head, and Aggregate (with its audit receipt checked here from the
  wire format alone) with an envelope signed here (Ed25519 over the domain-separated
  context and the exact serialized QueryEnvelope bytes) using the PKCS#8 key from the demo;
- refusals with their gRPC code and `vrs-reason` trailer: replay, tampered signature, tampered
  envelope, wrong audience, unknown key, stale timestamp;
- TLS: no client certificate, a client certificate from another CA, a server identity that is
  not the dialled node, and a trust root that did not issue the node's certificate are refused.

The Python code for vrs.federation.v2 is generated from proto/ at run time (grpc_tools.protoc)
into a temporary folder; nothing generated is kept. Prints one line per check and closes with
`interop: N passed, M failed`; exits 1 when anything failed.

Usage: client.py --target 127.0.0.1:PORT --certs FED_DIR/certs [--country THA]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib
import ipaddress
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# C-core logs every refused handshake at error level; the checks say what matters.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc  # noqa: E402
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

# Must match vrs_core::signing::CONTEXT.
SIGNING_CONTEXT = b"vrs.federation.v2.query\0"
# Must match vrs_core::audit_chain::RECEIPT_CONTEXT (PROTOCOL.md, "Audit receipts").
RECEIPT_CONTEXT = b"vrs.federation.v2.audit-head\0"
FEDERATION_SERVICE = "vrs.federation.v2.Federation"
FEDERATION_FILE = "vrs/federation/v2/federation.proto"
COORDINATOR = "bali-rc"
OPEN_DIMENSIONS = {"route"}
# A route x quarter question over a few countries (a zCDP node refuses universes above its
# max_cells, and every route of the world is ~63,000): every cell of the universe comes back noisy.
GROUP_BY = ("route", "quarter")
ROUTE_COUNTRIES = ["MMR", "THA", "KHM", "LAO", "MYS", "IDN"]
RPC_TIMEOUT_S = 5.0
REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# Generated code

def generate_stubs(proto_root: Path, out_dir: Path):
    """Compiles federation.proto with grpc_tools.protoc into out_dir and imports it."""
    from grpc_tools import protoc

    well_known = Path(importlib.import_module("grpc_tools").__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(proto_root / FEDERATION_FILE),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {proto_root / FEDERATION_FILE}")
    sys.path.insert(0, str(out_dir))
    pb2 = importlib.import_module("vrs.federation.v2.federation_pb2")
    pb2_grpc = importlib.import_module("vrs.federation.v2.federation_pb2_grpc")
    return pb2, pb2_grpc


# --------------------------------------------------------------------------------------------
# The coordinator's signing key

def _der_read(buf: bytes, pos: int) -> tuple[int, bytes, int]:
    """One DER TLV at pos: (tag, contents, position after it)."""
    if pos + 2 > len(buf):
        raise ValueError("truncated DER")
    tag, length, pos = buf[pos], buf[pos + 1], pos + 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(buf):
            raise ValueError("bad DER length")
        length, pos = int.from_bytes(buf[pos:pos + n], "big"), pos + n
    if pos + length > len(buf):
        raise ValueError("truncated DER")
    return tag, buf[pos:pos + length], pos + length


ED25519_OID = bytes.fromhex("06032b6570")  # 1.3.101.112


def load_ed25519_pkcs8(der: bytes) -> tuple[Ed25519PrivateKey, bytes | None]:
    """Reads an RFC 5958 OneAsymmetricKey holding an Ed25519 key (v1, or v2 with the public key
    as ring writes it). Returns the key and the embedded public key, if any.

    cryptography's own loader refuses ring's v2 documents (the `[1] publicKey` field), so the
    structure is walked here: SEQUENCE { INTEGER version, SEQUENCE { OID 1.3.101.112 },
    OCTET STRING { OCTET STRING seed(32) }, [0] attributes OPTIONAL, [1] publicKey OPTIONAL }.
    """
    tag, body, end = _der_read(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("not a DER SEQUENCE")
    tag, version, pos = _der_read(body, 0)
    if tag != 0x02 or version not in (b"\x00", b"\x01"):
        raise ValueError("unsupported PKCS#8 version")
    tag, alg, pos = _der_read(body, pos)
    if tag != 0x30 or alg != ED25519_OID:
        raise ValueError("not an Ed25519 key")
    tag, wrapped, pos = _der_read(body, pos)
    if tag != 0x04:
        raise ValueError("no privateKey OCTET STRING")
    tag, seed, _ = _der_read(wrapped, 0)
    if tag != 0x04 or len(seed) != 32:
        raise ValueError("Ed25519 seed is not 32 bytes")
    public = None
    while pos < len(body):
        tag, value, pos = _der_read(body, pos)
        if tag == 0x81:  # [1] IMPLICIT BIT STRING: unused-bits byte, then the key
            if len(value) != 33 or value[0] != 0:
                raise ValueError("bad publicKey BIT STRING")
            public = value[1:]
    return Ed25519PrivateKey.from_private_bytes(seed), public


@dataclass
class Signer:
    key: Ed25519PrivateKey
    public: bytes

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.public).hexdigest()

    def sign(self, envelope: bytes) -> bytes:
        return self.key.sign(SIGNING_CONTEXT + envelope)

    @staticmethod
    def fresh() -> "Signer":
        key = Ed25519PrivateKey.generate()
        return Signer(key, raw_public(key))


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --------------------------------------------------------------------------------------------
# Certificates made here for the negative TLS checks

def self_made_pki(client_san: str) -> tuple[bytes, bytes, bytes]:
    """An unrelated CA and a client certificate it issued for client_san.
    Returns (ca_pem, cert_pem, key_pem)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "interop unrelated CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_san)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(client_san)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), leaf.public_bytes(pem), key_pem


# --------------------------------------------------------------------------------------------
# Checks

class CheckFailed(Exception):
    pass


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


@dataclass
class Outcome:
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Context:
    target: str
    country: str
    ca: bytes
    cert: bytes
    key: bytes
    signer: Signer
    pb2: object
    pb2_grpc: object
    local_file: descriptor_pb2.FileDescriptorProto
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def node_san(self) -> str:
        return f"node.{self.country.lower()}.vrs.test"

    @property
    def issuer(self) -> str:
        return f"coordinator.{COORDINATOR}.vrs.test"

    def channel(
        self,
        *,
        ca: bytes | None = None,
        cert: bytes | None = None,
        key: bytes | None = None,
        client_cert: bool = True,
        server_name: str | None = None,
    ) -> grpc.Channel:
        """A fresh channel (own subchannel pool, so no connection is shared between checks)."""
        if client_cert:
            creds = grpc.ssl_channel_credentials(
                root_certificates=ca or self.ca,
                private_key=key or self.key,
                certificate_chain=cert or self.cert,
            )
        else:
            creds = grpc.ssl_channel_credentials(root_certificates=ca or self.ca)
        options = [
            ("grpc.ssl_target_name_override", server_name or self.node_san),
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.enable_retries", 0),
            ("grpc.enable_http_proxy", 0),  # loopback only, never through a proxy
        ]
        ch = grpc.secure_channel(self.target, creds, options=options)
        self.channels.append(ch)
        return ch

    def close(self) -> None:
        for ch in self.channels:
            ch.close()
        self.channels.clear()

    # ---- signed requests

    def envelope(self, *, audience: str | None = None, issued_at_ms: int | None = None,
                 query_id: str | None = None):
        pb2 = self.pb2
        return pb2.QueryEnvelope(
            query_id=query_id or f"interop-{uuid.uuid4()}",
            issued_at_ms=issued_at_ms if issued_at_ms is not None else int(time.time() * 1000),
            audience=audience or self.country,
            issuer=self.issuer,
            query=pb2.Query(
                unit="incidents",
                group_by=list(GROUP_BY),
                period_from="2024",
                margins=True,
                filters=[
                    pb2.Filter(dimension="origin", values=ROUTE_COUNTRIES),
                    pb2.Filter(dimension="destination", values=ROUTE_COUNTRIES),
                ],
            ),
        )

    def request(self, env, signer: Signer | None = None):
        signer = signer or self.signer
        data = env.SerializeToString()
        return self.pb2.AggregateRequest(
            envelope=data, signature=signer.sign(data), key_id=signer.key_id
        )

    def stub(self, channel: grpc.Channel | None = None):
        return self.pb2_grpc.FederationStub(channel or self.channel())


def reason_of(err: grpc.RpcError) -> str | None:
    for k, v in err.trailing_metadata() or ():
        if k == "vrs-reason":
            return v
    return None


def expect_refusal(ctx: Context, request, code: grpc.StatusCode, reason: str) -> None:
    try:
        ctx.stub().Aggregate(request, timeout=RPC_TIMEOUT_S)
    except grpc.RpcError as err:
        got = (err.code(), reason_of(err))
        expect(got == (code, reason), f"expected {code.name}/{reason}, got {got[0].name}/{got[1]}")
        expect(
            (err.details() or "").startswith(f"{reason}: "),
            f"status message should start with the reason: {err.details()!r}",
        )
        return
    raise CheckFailed(f"expected {code.name}/{reason}, the node answered")


def expect_tls_refusal(channel: grpc.Channel, what: str) -> None:
    """The first RPC on channel must fail at the transport (UNAVAILABLE), not answer."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT_S)
    except grpc.RpcError as err:
        expect(
            err.code() == grpc.StatusCode.UNAVAILABLE,
            f"{what}: expected UNAVAILABLE, got {err.code().name} ({err.details()})",
        )
        return
    raise CheckFailed(f"{what}: the node answered")


def wait_for_listener(target: str, attempts: int = 50) -> None:
    """Polls a plain TCP connect (at most `attempts` x 0.1 s) so that a node still starting is
    not mistaken for a refusal; TLS problems then show on the first RPC, without retries."""
    host, port = target.rsplit(":", 1)
    for _ in range(attempts):
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise CheckFailed(f"nothing listens on {target} after {attempts / 10:.0f} s")


def check_health(ctx: Context) -> None:
    wait_for_listener(ctx.target)
    stub = health_pb2_grpc.HealthStub(ctx.channel())
    for service in ("", FEDERATION_SERVICE):
        resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT_S)
        expect(
            resp.status == health_pb2.HealthCheckResponse.SERVING,
            f"health of {service or '(server)'!r} is {resp.status}, not SERVING",
        )


def reflect(ctx: Context, method: str, requests: list) -> list:
    """Runs one ServerReflectionInfo stream on the given method path (v1alpha or v1 wire)."""
    call = ctx.channel().stream_stream(
        method,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(call(iter(requests), timeout=RPC_TIMEOUT_S))


V1ALPHA = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
# v1 and v1alpha messages are the same on the wire; only the service name differs.
V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def check_reflection_v1alpha(ctx: Context) -> None:
    # The stock Python client (v1alpha stubs) first.
    stub = reflection_pb2_grpc.ServerReflectionStub(ctx.channel())
    responses = list(
        stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
            timeout=RPC_TIMEOUT_S,
        )
    )
    listed = {s.name for r in responses for s in r.list_services_response.service}
    for name in (FEDERATION_SERVICE, "grpc.health.v1.Health"):
        expect(name in listed, f"{name} not listed by reflection: {sorted(listed)}")


def check_reflection_v1(ctx: Context) -> None:
    responses = reflect(ctx, V1, [reflection_pb2.ServerReflectionRequest(list_services="")])
    listed = {s.name for r in responses for s in r.list_services_response.service}
    expect(FEDERATION_SERVICE in listed, f"{FEDERATION_SERVICE} not listed: {sorted(listed)}")


def normalized(f: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """A file descriptor without what differs between compilers (comments, json names)."""
    g = descriptor_pb2.FileDescriptorProto()
    g.CopyFrom(f)
    g.ClearField("source_code_info")

    def strip(messages):
        for m in messages:
            for fl in m.field:
                fl.ClearField("json_name")
            strip(m.nested_type)

    strip(g.message_type)
    return g


def check_reflected_descriptor(ctx: Context) -> None:
    responses = reflect(
        ctx, V1ALPHA, [reflection_pb2.ServerReflectionRequest(file_containing_symbol=FEDERATION_SERVICE)]
    )
    expect(len(responses) == 1, f"{len(responses)} responses")
    r = responses[0]
    expect(
        r.WhichOneof("message_response") == "file_descriptor_response",
        f"no descriptor: {r.error_response.error_message}",
    )
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in r.file_descriptor_response.file_descriptor_proto]
    served = next((f for f in files if f.name == FEDERATION_FILE), None)
    expect(served is not None, f"{FEDERATION_FILE} not among {[f.name for f in files]}")
    expect(
        normalized(served) == normalized(ctx.local_file),
        "the descriptor the node serves differs from proto/ in this repository",
    )
    # The node's own service, and the helper aggregator's (served by `vrs-helper`, not by nodes;
    # it shares the file, so its descriptor comes along).
    methods = {s.name: [m.name for m in s.method] for s in served.service}
    expect(
        methods == {"Federation": ["Describe", "Aggregate", "Plan", "FetchHelperShare"],
                    "Helper": ["AggregateBatch"]},
        f"methods {methods}",
    )


def check_describe(ctx: Context) -> None:
    d = ctx.stub().Describe(ctx.pb2.DescribeRequest(), timeout=RPC_TIMEOUT_S)
    expect(d.country == ctx.country, f"country {d.country!r}")
    expect(d.schema_version > 0, "schema_version 0")
    expect(d.software_version != "", "no software_version")
    expect("incidents" in d.units, f"units {list(d.units)}")
    names = [dim.name for dim in d.dimensions]
    for name in ("mode", "quarter"):
        expect(name in names, f"dimension {name} not published: {names}")
    for dim in d.dimensions:
        # `route` (ORIG>DEST pairs) is open-ended and published with no list; the rest are closed.
        expect(len(dim.values) > 0 or dim.name in OPEN_DIMENSIONS,
               f"dimension {dim.name} has no values")
    expect(d.HasField("policy"), "no public policy")
    expect(d.policy.min_count >= 3, f"min_count {d.policy.min_count} below the floor 3")
    expect(d.policy.min_contributors >= 2, f"min_contributors {d.policy.min_contributors}")
    expect(d.first_period <= d.last_period and len(d.first_period) == 7,
           f"periods {d.first_period!r}..{d.last_period!r}")
    # The signed audit head, checked here from the wire format alone (PROTOCOL.md).
    expect(len(d.audit_key) == 64, f"audit_key {d.audit_key!r}")
    expect(d.HasField("audit_head"), "no signed audit head")
    verify_receipt(bytes.fromhex(d.audit_key), ctx.country, d.audit_head)
    AUDIT_KEYS[ctx.country] = bytes.fromhex(d.audit_key)


# The audit key each node published in Describe (check_describe runs before check_aggregate).
AUDIT_KEYS: dict[str, bytes] = {}


def verify_receipt(key: bytes, country: str, r) -> None:
    """An audit receipt: Ed25519 over RECEIPT_CONTEXT || country || entries (8 bytes BE) ||
    head (32 bytes) || signed_at_ms (8 bytes BE); a changed field must not verify."""
    expect(len(r.head) == 64 and len(r.signature) == 64, "receipt shape")
    def message(entries: int) -> bytes:
        return (RECEIPT_CONTEXT + country.encode() + entries.to_bytes(8, "big")
                + bytes.fromhex(r.head) + r.signed_at_ms.to_bytes(8, "big", signed=True))
    pub = Ed25519PublicKey.from_public_bytes(key)
    try:
        pub.verify(r.signature, message(r.entries))
    except InvalidSignature:
        raise CheckFailed("the audit receipt does not verify under the node's audit key")
    try:
        pub.verify(r.signature, message(r.entries + 1))
    except InvalidSignature:
        return
    raise CheckFailed("an altered audit receipt verifies")


@dataclass
class Answered:
    request: object = None
    note: str = ""


def check_aggregate(ctx: Context, state: Answered) -> None:
    pb2 = ctx.pb2
    env = ctx.envelope()
    req = ctx.request(env)
    resp = ctx.stub().Aggregate(req, timeout=RPC_TIMEOUT_S)
    state.request = req
    expect(resp.status == pb2.ANSWER_STATUS_ANSWERED, f"status {resp.status}")
    expect(resp.country == ctx.country, f"country {resp.country!r}")
    expect(resp.query_id == env.query_id, "query_id not echoed")
    expect(list(resp.dimensions) == list(GROUP_BY), f"dimensions {list(resp.dimensions)}")
    expect(len(resp.cells) > 0, "no cells")
    expect(resp.policy.mode == pb2.PROTECTION_MODE_ZCDP, f"protection mode {resp.policy.mode}")
    expect(resp.HasField("privacy"), "no privacy block")
    p = resp.privacy
    expect(p.rho_micro > 0 and p.sigma > 0, f"rho {p.rho_micro}, sigma {p.sigma}")
    expect(len(p.quarters) == 4, f"quarters charged {[q.quarter for q in p.quarters]}")
    # The universe: every route of the countries asked (36) x 4 quarters, its margins and total.
    n = len(ROUTE_COUNTRIES) ** 2
    expect(len(resp.cells) == n * 4 + n + 4 + 1, f"{len(resp.cells)} cells")
    noisy = negative = 0
    for cell in resp.cells:
        expect(len(cell.key) == len(GROUP_BY), f"key {list(cell.key)}")
        outcome = cell.WhichOneof("outcome")
        if outcome == "noisy":
            noisy += 1
            negative += cell.noisy < 0
            expect(abs(cell.sigma - p.sigma) < 1e-9, f"cell sigma {cell.sigma} vs {p.sigma}")
        else:
            raise CheckFailed(f"cell {list(cell.key)} is {outcome!r}, not a noisy value")
    expect(negative > 0, "no negative noisy value: the sint64 field is not exercised")
    released, suppressed = noisy, 0
    expect(any(list(c.key) == ["*", "*"] for c in resp.cells), "no grand total ['*','*'] (margins)")
    expect(len(resp.answer_digest) == 64 and all(c in "0123456789abcdef" for c in resp.answer_digest),
           f"answer_digest {resp.answer_digest!r}")
    expect(resp.HasField("policy") and resp.policy.min_count >= 3, "policy missing")
    expect(resp.HasField("receipt") and resp.receipt.entries > 0, "no audit receipt")
    expect(ctx.country in AUDIT_KEYS, "no audit key from Describe")
    verify_receipt(AUDIT_KEYS[ctx.country], ctx.country, resp.receipt)
    state.note = f"{released} noisy cells ({negative} negative), sigma {p.sigma:.3f}, rho {p.rho_micro} micro"


def check_replay(ctx: Context, state: Answered) -> None:
    expect(state.request is not None, "no earlier answered request to replay")
    expect_refusal(ctx, state.request, grpc.StatusCode.ALREADY_EXISTS, "REPLAYED_QUERY_ID")


def check_tampered_signature(ctx: Context) -> None:
    req = ctx.request(ctx.envelope())
    sig = bytearray(req.signature)
    sig[0] ^= 0x01
    req.signature = bytes(sig)
    expect_refusal(ctx, req, grpc.StatusCode.PERMISSION_DENIED, "BAD_SIGNATURE")


def check_tampered_envelope(ctx: Context) -> None:
    req = ctx.request(ctx.envelope())
    other = ctx.envelope()  # another query id: a different but well-formed envelope
    req.envelope = other.SerializeToString()
    expect_refusal(ctx, req, grpc.StatusCode.PERMISSION_DENIED, "BAD_SIGNATURE")


def check_wrong_audience(ctx: Context) -> None:
    other = "IDN" if ctx.country != "IDN" else "THA"
    req = ctx.request(ctx.envelope(audience=other))
    expect_refusal(ctx, req, grpc.StatusCode.PERMISSION_DENIED, "WRONG_AUDIENCE")


def check_unknown_key(ctx: Context) -> None:
    req = ctx.request(ctx.envelope(), signer=Signer.fresh())
    expect_refusal(ctx, req, grpc.StatusCode.PERMISSION_DENIED, "UNKNOWN_SIGNING_KEY")


def check_stale(ctx: Context) -> None:
    hour_ago = int(time.time() * 1000) - 3_600_000
    req = ctx.request(ctx.envelope(issued_at_ms=hour_ago))
    expect_refusal(ctx, req, grpc.StatusCode.FAILED_PRECONDITION, "STALE_QUERY")


def check_no_client_cert(ctx: Context) -> None:
    expect_tls_refusal(ctx.channel(client_cert=False), "no client certificate")


def check_foreign_client_cert(ctx: Context) -> None:
    _, cert, key = self_made_pki(ctx.issuer)
    expect_tls_refusal(ctx.channel(cert=cert, key=key), "client certificate from another CA")


def check_server_identity(ctx: Context) -> None:
    # The right name is what every other check dials; say so explicitly here too.
    stub = health_pb2_grpc.HealthStub(ctx.channel(server_name=ctx.node_san))
    stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT_S)
    other = "node.idn.vrs.test" if ctx.country != "IDN" else "node.tha.vrs.test"
    expect_tls_refusal(ctx.channel(server_name=other), f"node dialled as {other}")


def check_unrelated_trust_root(ctx: Context) -> None:
    ca, _, _ = self_made_pki("unused.vrs.test")
    expect_tls_refusal(ctx.channel(ca=ca), "trust root that did not issue the node certificate")


# --------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True, help="host:port of the node (loopback only)")
    ap.add_argument("--certs", required=True, type=Path,
                    help="the demo's certs folder (ca.pem, coordinator.bali-rc.*)")
    ap.add_argument("--country", default="THA", help="ISO3 of the node (default THA)")
    ap.add_argument("--ca", type=Path, help="trust root instead of CERTS/ca.pem")
    ap.add_argument("--signing-key", type=Path,
                    help="PKCS#8 Ed25519 key instead of CERTS/coordinator.bali-rc.signing.pk8")
    ap.add_argument("--proto", type=Path, default=REPO / "proto" / "proto",
                    help="proto root (default: proto/proto of this repository)")
    args = ap.parse_args()

    host = args.target.rsplit(":", 1)[0].strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        print(f"refusing to test {args.target}: loopback addresses only", file=sys.stderr)
        return 2

    certs = args.certs
    stem = f"coordinator.{COORDINATOR}"
    key_path = args.signing_key or certs / f"{stem}.signing.pk8"
    key, embedded = load_ed25519_pkcs8(key_path.read_bytes())
    public = raw_public(key)
    if embedded is not None and embedded != public:
        print(f"{key_path}: embedded public key does not match the private key", file=sys.stderr)
        return 2
    pub_file = certs / f"{stem}.signing.pub"
    if args.signing_key is None and pub_file.exists():
        if pub_file.read_text().strip() != public.hex():
            print(f"{pub_file} does not match {key_path}", file=sys.stderr)
            return 2

    gen_dir = Path(tempfile.mkdtemp(prefix="vrs-interop-pb-"))
    try:
        pb2, pb2_grpc = generate_stubs(args.proto, gen_dir)
        local_file = descriptor_pb2.FileDescriptorProto()
        pb2.DESCRIPTOR.CopyToProto(local_file)
        ctx = Context(
            target=args.target,
            country=args.country.upper(),
            ca=(args.ca or certs / "ca.pem").read_bytes(),
            cert=(certs / f"{stem}.vrs.test.pem").read_bytes(),
            key=(certs / f"{stem}.vrs.test.key").read_bytes(),
            signer=Signer(key, public),
            pb2=pb2,
            pb2_grpc=pb2_grpc,
            local_file=local_file,
        )
        answered = Answered()
        checks: list[tuple[str, Callable[[], None]]] = [
            ("health: grpc.health.v1 Check is SERVING", lambda: check_health(ctx)),
            ("reflection v1alpha: services listed", lambda: check_reflection_v1alpha(ctx)),
            ("reflection v1: services listed", lambda: check_reflection_v1(ctx)),
            ("reflection: served descriptor equals proto/", lambda: check_reflected_descriptor(ctx)),
            ("Describe: country, dimensions, units, policy", lambda: check_describe(ctx)),
            ("Aggregate: signed query answered, value-or-suppressed cells",
             lambda: check_aggregate(ctx, answered)),
            ("Aggregate: replayed envelope -> ALREADY_EXISTS REPLAYED_QUERY_ID",
             lambda: check_replay(ctx, answered)),
            ("Aggregate: tampered signature -> PERMISSION_DENIED BAD_SIGNATURE",
             lambda: check_tampered_signature(ctx)),
            ("Aggregate: tampered envelope -> PERMISSION_DENIED BAD_SIGNATURE",
             lambda: check_tampered_envelope(ctx)),
            ("Aggregate: other audience -> PERMISSION_DENIED WRONG_AUDIENCE",
             lambda: check_wrong_audience(ctx)),
            ("Aggregate: unknown key -> PERMISSION_DENIED UNKNOWN_SIGNING_KEY",
             lambda: check_unknown_key(ctx)),
            ("Aggregate: hour-old timestamp -> FAILED_PRECONDITION STALE_QUERY",
             lambda: check_stale(ctx)),
            ("TLS: no client certificate refused", lambda: check_no_client_cert(ctx)),
            ("TLS: client certificate from another CA refused",
             lambda: check_foreign_client_cert(ctx)),
            ("TLS: server identity checked (node.<iso3>.vrs.test)",
             lambda: check_server_identity(ctx)),
            ("TLS: node refused under an unrelated trust root",
             lambda: check_unrelated_trust_root(ctx)),
        ]
        outcome = Outcome()
        for name, run in checks:
            started = time.monotonic()
            try:
                run()
            except CheckFailed as e:
                outcome.failed.append((name, str(e)))
            except grpc.RpcError as e:
                outcome.failed.append((name, f"RPC failed: {e.code().name}: {e.details()}"))
            except Exception as e:  # a bug in a check is a failure, not a crash
                outcome.failed.append((name, f"{type(e).__name__}: {e}"))
                traceback.print_exc()
            else:
                outcome.passed.append(name)
            finally:
                ctx.close()
            ms = (time.monotonic() - started) * 1000
            if outcome.failed and outcome.failed[-1][0] == name:
                print(f"FAIL  {name} ({ms:.0f} ms): {outcome.failed[-1][1]}", flush=True)
            else:
                print(f"ok    {name} ({ms:.0f} ms)", flush=True)
    finally:
        shutil.rmtree(gen_dir, ignore_errors=True)
    if answered.note:
        print(f"      (Aggregate: {answered.note})")
    print(f"interop: {len(outcome.passed)} passed, {len(outcome.failed)} failed", flush=True)
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())

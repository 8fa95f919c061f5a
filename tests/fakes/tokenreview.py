"""A stand-in for the Kubernetes API's TokenReview endpoint, over HTTPS on loopback.

Vault's kubernetes auth method sends every login's JWT to
`POST <kubernetes_host>/apis/authentication.k8s.io/v1/tokenreviews`, authenticated
with the token reviewer JWT or, when none is configured, with the login JWT itself
(the mode the `system:auth-delegator` binding of the ESO ServiceAccount is for).
This server answers like kube-apiserver for the tokens it issued: the ServiceAccount
as `system:serviceaccount:<ns>:<name>`, and the audiences of the token that were
asked for (none in common: not authenticated). Like kube-apiserver, it authenticates
the caller first: a bearer token whose audiences do not include the API server's own
(`API_AUDIENCES`) gets 401, which is why Vault reviewing a `vault`-only token with that
same token fails.

Used through the ``tokenreview`` fixture of ``tests/conftest.py``: ``tokenreview.url`` and
``tokenreview.ca_file`` are Vault's ``kubernetes_host`` and ``kubernetes_ca_cert``,
``tokenreview.issue(namespace, name, audiences)`` makes a token it will recognise.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from fakes.tls_server import QuietHandler, ServingThread, TestCA, TLSHTTPServer

PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
API_AUDIENCES = ("https://kubernetes.default.svc.cluster.local",
                 "https://kubernetes.default.svc")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Issued:
    namespace: str
    name: str
    uid: str
    audiences: list[str]


@dataclass
class TokenReviewServer:
    tokens: dict[str, Issued] = field(default_factory=dict)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    bearers: list[str] = field(default_factory=list)

    def start(self) -> TokenReviewServer:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._tls = TestCA("127.0.0.1", "localhost", prefix="fake-tokenreview-")
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.read_body() or b"{}")
                server.reviews.append(body)
                server.bearers.append(self.headers.get("Authorization", ""))
                if self.path != PATH:
                    self.send_body(404, {}, b"")
                    return
                bearer = server.tokens.get(
                    self.headers.get("Authorization", "").removeprefix("Bearer "))
                if bearer is None or not set(bearer.audiences) & set(API_AUDIENCES):
                    self.send_body(401, {"Content-Type": "application/json"}, json.dumps(
                        {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "reason": "Unauthorized", "code": 401}).encode())
                    return
                self.send_body(201, {"Content-Type": "application/json"},
                               json.dumps(server.review(body)).encode())

        self._serving = ServingThread(
            TLSHTTPServer(("127.0.0.1", 0), Handler, self._tls.context), "TokenReview")
        self.url = f"https://127.0.0.1:{self._serving.port}"
        return self

    @property
    def ca_file(self) -> Path:
        """The PEM of the CA behind the server's certificate (`kubernetes_ca_cert`)."""
        return self._tls.ca_path

    def stop(self) -> None:
        self._serving.stop()
        self._tls.remove()

    def __enter__(self) -> TokenReviewServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def issue(self, namespace: str, name: str, audiences: list[str]) -> str:
        """A service account token (RS256 JWT) as the TokenRequest API would make it."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        uid = str(uuid.uuid4())
        claims = {
            "iss": "https://kubernetes.default.svc.cluster.local",
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "aud": audiences, "iat": now, "nbf": now, "exp": now + 600,
            "kubernetes.io": {"namespace": namespace,
                              "serviceaccount": {"name": name, "uid": uid}},
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": "test"}
        signing_input = f"{_b64(json.dumps(header).encode())}." \
                        f"{_b64(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = f"{signing_input}.{_b64(signature)}"
        self.tokens[token] = Issued(namespace, name, uid, audiences)
        return token

    def review(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = body.get("spec") or {}
        issued = self.tokens.get(spec.get("token", ""))
        wanted = spec.get("audiences") or []
        status: dict[str, Any] = {"authenticated": False}
        if issued is None:
            status["error"] = "invalid bearer token"
        else:
            common = [a for a in issued.audiences if a in wanted] if wanted else \
                issued.audiences
            if wanted and not common:
                status["error"] = "token audiences are invalid for the target audiences"
            else:
                status = {"authenticated": True, "audiences": common, "user": {
                    "username": f"system:serviceaccount:{issued.namespace}:{issued.name}",
                    "uid": issued.uid,
                    "groups": ["system:serviceaccounts",
                               f"system:serviceaccounts:{issued.namespace}"]}}
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": spec, "status": status}

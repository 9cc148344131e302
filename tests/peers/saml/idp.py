#!/usr/bin/env python3
"""A real SAML 2.0 identity provider for Tessera's federation tests.

It is pysaml2's IdP (saml2.server.Server) behind a small HTTP server: pysaml2
parses and checks the AuthnRequest / LogoutRequest, builds the Response, and
signs / encrypts it with the xmlsec1 binary.  Nothing here is meant for
production: the key is thrown away at exit, every user's password is the same.

    python3 idp.py '<json config>'

Config (JSON, one argument):
    port                  TCP port on 127.0.0.1 (0 = pick a free one)
    host                  bind address, default 127.0.0.1
    sp_metadata_url       URL of the SP's metadata (fetched lazily, retried until it loads)
    sp_metadata_xml       the SP's metadata as a string (instead of the URL)
    users                 {"alice": {"email": ..., "givenName": ..., "groups": [...]}}
                          every key becomes a SAML attribute (NameFormat basic), except
                          "password" (per-user password), "name_id" (value for
                          persistent / unspecified NameIDs)
    password              password of every user without its own, default "secret"
    sign_response         default true
    sign_assertion        default true
    encrypt_assertion     default false
    data_encryption       aes128-cbc (default) | aes192-cbc | aes256-cbc | aes128-gcm | aes256-gcm | tripledes-cbc
    key_transport         rsa-oaep-mgf1p (default) | rsa-1_5
    keyinfo_xmlns_ds      after encrypting, also declare xmlns:ds on EncryptedData's own
                          <KeyInfo> (pysaml2 declares it on EncryptedData only; samael
                          0.0.22 cannot parse that), default false
    encrypt_with_signing_cert  also use a KeyDescriptor use="signing" cert for encryption
                          when the SP metadata has none for encryption, default false
    name_id_format        NameID format when the AuthnRequest asks for none,
                          default urn:oasis:names:tc:SAML:2.0:nameid-format:persistent
    entity_id             default http://HOST:PORT/metadata
    assertion_lifetime    seconds, default 300
    want_authn_requests_signed  default false
    sso_session           remember a login with a cookie (SSO without a form), default true

Once it listens it prints one JSON line on stdout:
    {"entity_id": ..., "metadata_url": ..., "sso_url": ..., "slo_url": ..., "base_url": ..., "port": ...}

Endpoints: see README.md in this folder.
"""

import atexit
import base64
import datetime
import html
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import urllib.request
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, class_name, saml, samlp
from saml2.authn_context import PASSWORDPROTECTEDTRANSPORT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.s_utils import do_ava, factory
from saml2.server import Server
from saml2.sigver import (
    get_pem_wrapped_unwrapped,
    make_temp,
    pre_encrypt_assertion,
    pre_encryption_part,
    pre_signature_part,
    signed_instance_factory,
)
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
ATTRNAME_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
STATUS_NO_PASSIVE = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"

DATA_ENCRYPTION = {
    # name: (algorithm URI, xmlsec1 --session-key)
    "aes128-cbc": ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "aes-128"),
    "aes192-cbc": ("http://www.w3.org/2001/04/xmlenc#aes192-cbc", "aes-192"),
    "aes256-cbc": ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "aes-256"),
    "aes128-gcm": ("http://www.w3.org/2009/xmlenc11#aes128-gcm", "aes-128"),
    "aes256-gcm": ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "aes-256"),
    "tripledes-cbc": ("http://www.w3.org/2001/04/xmlenc#tripledes-cbc", "des-192"),
}
KEY_TRANSPORT = {
    "rsa-oaep-mgf1p": "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
    "rsa-1_5": "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
}
RESERVED_USER_KEYS = {"password", "name_id"}
PENDING_TTL = 600


class PeerError(Exception):
    """An error answered to the HTTP client with a status code."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def log(msg):
    print(f"[saml-idp] {msg}", file=sys.stderr, flush=True)


def utc_instant(offset_seconds=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_keypair(directory, common_name):
    """A throwaway RSA-2048 key and a self-signed certificate, both PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .sign(key, hashes.SHA256())
    )
    key_path = os.path.join(directory, "idp.key")
    cert_path = os.path.join(directory, "idp.crt")
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    with open(cert_path, "wb") as f:
        f.write(cert_pem)
    return key_path, cert_path, cert_pem.decode("ascii")


class PeerServer(Server):
    """pysaml2's IdP; minting for an SP that is not in the metadata (POST /__issue) is allowed."""

    def has_encrypt_cert_in_metadata(self, sp_entity_id):
        try:
            return super().has_encrypt_cert_in_metadata(sp_entity_id)
        except KeyError:
            return False


class IdP:
    def __init__(self, cfg, port):
        self.cfg = cfg
        self.host = cfg.get("host", "127.0.0.1")
        self.port = port
        self.base_url = f"http://{self.host}:{port}"
        self.entity_id = cfg.get("entity_id", f"{self.base_url}/metadata")
        self.users = cfg.get("users", {})
        self.default_password = cfg.get("password", "secret")
        self.sign_response = bool(cfg.get("sign_response", True))
        self.sign_assertion = bool(cfg.get("sign_assertion", True))
        self.encrypt_assertion = bool(cfg.get("encrypt_assertion", False))
        self.data_encryption = cfg.get("data_encryption", "aes128-cbc")
        self.key_transport = cfg.get("key_transport", "rsa-oaep-mgf1p")
        if self.data_encryption not in DATA_ENCRYPTION:
            raise SystemExit(f"unknown data_encryption {self.data_encryption!r}")
        if self.key_transport not in KEY_TRANSPORT:
            raise SystemExit(f"unknown key_transport {self.key_transport!r}")
        self.encrypt_with_signing_cert = bool(cfg.get("encrypt_with_signing_cert", False))
        self.keyinfo_xmlns_ds = bool(cfg.get("keyinfo_xmlns_ds", False))
        self.default_name_id_format = cfg.get("name_id_format", NAMEID_PERSISTENT)
        self.lifetime = int(cfg.get("assertion_lifetime", 300))
        self.sso_session = bool(cfg.get("sso_session", True))
        self.sp_metadata_url = cfg.get("sp_metadata_url")
        self.sp_metadata_xml = cfg.get("sp_metadata_xml")
        if not self.sp_metadata_xml and cfg.get("sp_metadata_file"):
            with open(cfg["sp_metadata_file"], encoding="utf-8") as f:
                self.sp_metadata_xml = f.read()

        self.tmpdir = tempfile.mkdtemp(prefix="tessera-saml-idp-")
        atexit.register(shutil.rmtree, self.tmpdir, True)
        self.key_path, self.cert_path, self.cert_pem = make_keypair(self.tmpdir, self.entity_id[:64])

        xmlsec = shutil.which("xmlsec1")
        if not xmlsec:
            raise SystemExit("xmlsec1 not found on PATH (Debian: apt-get install xmlsec1)")

        conf = {
            "entityid": self.entity_id,
            "xmlsec_binary": xmlsec,
            "key_file": self.key_path,
            "cert_file": self.cert_path,
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "accepted_time_diff": 60,
            "delete_tmpfiles": True,
            "metadata": {},
            "service": {
                "idp": {
                    "name": "Tessera test IdP (pysaml2)",
                    "endpoints": {
                        "single_sign_on_service": [
                            (f"{self.base_url}/sso/redirect", BINDING_HTTP_REDIRECT),
                            (f"{self.base_url}/sso/post", BINDING_HTTP_POST),
                        ],
                        "single_logout_service": [
                            (f"{self.base_url}/slo/redirect", BINDING_HTTP_REDIRECT),
                            (f"{self.base_url}/slo/post", BINDING_HTTP_POST),
                        ],
                    },
                    "name_id_format": [NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_EMAIL, NAMEID_UNSPECIFIED],
                    "want_authn_requests_signed": bool(cfg.get("want_authn_requests_signed", False)),
                    "signing_algorithm": SIG_RSA_SHA256,
                    "digest_algorithm": DIGEST_SHA256,
                    "sign_response": self.sign_response,
                    "sign_assertion": self.sign_assertion,
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": max(1, self.lifetime // 60)},
                            "attribute_restrictions": None,
                            "name_form": ATTRNAME_BASIC,
                        }
                    },
                }
            },
        }
        idp_conf = IdPConfig()
        idp_conf.load(conf)
        self.server = PeerServer(config=idp_conf)
        self.server.signing_algorithm = SIG_RSA_SHA256
        self.server.digest_algorithm = DIGEST_SHA256
        self.lock = threading.RLock()
        self.sp_loaded = False
        self.pending = {}  # key -> pending AuthnRequest
        self.sessions = {}  # IdP session cookie -> {"user": ..., "sps": [...]}
        self.logout_log = []  # LogoutRequests/Responses received, for tests to inspect

        self.metadata_xml = create_metadata_string(None, config=idp_conf, valid=48, sign=False).decode("utf-8")

        if self.sp_metadata_xml:
            self.load_sp_metadata(self.sp_metadata_xml)
        elif self.sp_metadata_url:
            try:
                self.ensure_sp_metadata()
            except PeerError as e:
                log(f"SP metadata not loaded yet ({e}); will retry on the first request")

    # ----------------------------------------------------------- SP metadata

    def load_sp_metadata(self, xml):
        with self.lock:
            md = self.server.metadata
            old = md.metadata
            md.metadata = {}
            try:
                md.load("inline", xml)
            except Exception:
                md.metadata = old
                raise
            self.sp_loaded = True
            log(f"SP metadata loaded: {', '.join(self.sp_entity_ids())}")

    def ensure_sp_metadata(self):
        if self.sp_loaded:
            return
        if not self.sp_metadata_url:
            raise PeerError(503, "no SP metadata configured (sp_metadata_url / sp_metadata_xml / POST /__sp_metadata)")
        try:
            with urllib.request.urlopen(self.sp_metadata_url, timeout=10) as r:
                xml = r.read().decode("utf-8")
        except Exception as e:
            raise PeerError(503, f"cannot fetch SP metadata from {self.sp_metadata_url}: {e}") from e
        try:
            self.load_sp_metadata(xml)
        except Exception as e:
            raise PeerError(503, f"SP metadata from {self.sp_metadata_url} does not load: {e}") from e

    def sp_entity_ids(self):
        ids = []
        for md in self.server.metadata.metadata.values():
            for eid, ent in md.items():
                if "spsso_descriptor" in ent:
                    ids.append(eid)
        return ids

    def sp_certs(self, sp_entity_id, use):
        """Certificates (base64 DER, no PEM armour) of the SP, pysaml2's semantics:
        use="encryption" also matches KeyDescriptors without a use attribute."""
        try:
            return [c for _name, c in self.server.metadata.certs(sp_entity_id, "spsso", use)]
        except Exception:
            return []

    def sp_encryption_cert(self, sp_entity_id, override_pem=None):
        if override_pem:
            return get_pem_wrapped_unwrapped(override_pem.strip() + "\n")
        certs = self.sp_certs(sp_entity_id, "encryption")
        if not certs and self.encrypt_with_signing_cert:
            certs = self.sp_certs(sp_entity_id, "signing")
        if not certs:
            raise PeerError(
                400,
                f"encrypt_assertion is on but the metadata of SP {sp_entity_id!r} has no encryption "
                'certificate (a KeyDescriptor use="encryption" or without use)',
            )
        return get_pem_wrapped_unwrapped(certs[0])

    def sp_slo_endpoint(self, sp_entity_id):
        for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
            try:
                srvs = self.server.metadata.single_logout_service(sp_entity_id, binding, "spsso")
            except Exception:
                srvs = None
            if srvs:
                return binding, srvs[0].get("response_location") or srvs[0]["location"], srvs[0]["location"]
        return None, None, None

    # ------------------------------------------------------------- users

    def check_password(self, username, password):
        user = self.users.get(username)
        if user is None:
            return False
        expected = user.get("password", self.default_password)
        return secrets.compare_digest(str(expected).encode(), str(password).encode())

    def user_attributes(self, username):
        user = self.users.get(username) or {}
        attrs = {}
        for k, v in user.items():
            if k in RESERVED_USER_KEYS or v is None:
                continue
            attrs[k] = [str(x) for x in v] if isinstance(v, list) else [str(v)]
        return attrs

    def name_id_for(self, username, fmt, sp_entity_id):
        user = self.users.get(username) or {}
        fmt = fmt or self.default_name_id_format
        if fmt == NAMEID_TRANSIENT:
            value = "_" + secrets.token_hex(16)
        elif fmt == NAMEID_EMAIL:
            value = user.get("email")
            if not value:
                raise PeerError(400, f"user {username!r} has no email for an emailAddress NameID")
        else:  # persistent, unspecified, anything else
            value = user.get("name_id", username)
        return saml.NameID(
            format=fmt,
            text=value,
            name_qualifier=self.entity_id,
            sp_name_qualifier=sp_entity_id,
        )

    # ----------------------------------------------------------- responses

    def build_response(
        self,
        *,
        username,
        in_response_to,
        acs,
        sp_entity_id,
        audience=None,
        recipient=None,
        destination=None,
        name_id=None,
        name_id_format=None,
        attributes=None,
        sign_response=None,
        sign_assertion=None,
        encrypt_assertion=None,
        encrypt_cert_pem=None,
        keyinfo_xmlns_ds=None,
        data_encryption=None,
        key_transport=None,
        issuer=None,
        lifetime=None,
        time_offset=0,
        session_index=None,
        status=None,
    ):
        """The Response XML (str), signed / encrypted as asked. Returns (xml, info)."""
        sign_response = self.sign_response if sign_response is None else bool(sign_response)
        sign_assertion = self.sign_assertion if sign_assertion is None else bool(sign_assertion)
        encrypt_assertion = self.encrypt_assertion if encrypt_assertion is None else bool(encrypt_assertion)
        lifetime = self.lifetime if lifetime is None else int(lifetime)
        audience = sp_entity_id if audience is None else audience  # "" or [] = no AudienceRestriction
        recipient = acs if recipient is None else recipient
        destination = acs if destination is None else destination
        session_index = session_index or "_" + secrets.token_hex(16)

        if status and status != "urn:oasis:names:tc:SAML:2.0:status:Success":
            with self.lock:
                resp = self.server.create_error_response(
                    in_response_to, destination, (status, "authentication failed"), sign=sign_response,
                    sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256,
                )
            return str(resp), {"status": status}

        if isinstance(name_id, str):
            nid = saml.NameID(
                format=name_id_format or self.default_name_id_format,
                text=name_id,
                name_qualifier=self.entity_id,
                sp_name_qualifier=sp_entity_id,
            )
        elif name_id is None:
            nid = self.name_id_for(username, name_id_format, sp_entity_id)
        else:
            nid = name_id
        if attributes is None:
            attributes = self.user_attributes(username) if username else {}

        with self.lock:
            # pysaml2 builds the Response and its Assertion (unsigned, unencrypted);
            # then the fields are set to what was asked, then it is signed/encrypted.
            response = self.server.create_authn_response(
                identity={},
                in_response_to=in_response_to,
                destination=destination,
                sp_entity_id=sp_entity_id,
                name_id=nid,
                authn={"class_ref": PASSWORDPROTECTEDTRANSPORT, "authn_auth": self.entity_id},
                sign_response=False,
                sign_assertion=False,
                encrypt_assertion=False,
            )
            if isinstance(response, str):
                response = samlp.response_from_string(response)
            assertion = response.assertion
            now = utc_instant(time_offset)
            not_before = utc_instant(time_offset - 5)
            not_after = utc_instant(time_offset + lifetime)

            if issuer:
                response.issuer.text = issuer
                assertion.issuer.text = issuer
            response.issue_instant = now
            response.destination = destination or None
            response.in_response_to = in_response_to or None
            assertion.issue_instant = now
            assertion.conditions.not_before = not_before
            assertion.conditions.not_on_or_after = not_after
            assertion.conditions.audience_restriction = (
                [saml.AudienceRestriction(audience=[saml.Audience(text=a) for a in _aslist(audience)])]
                if audience
                else []
            )
            assertion.subject.name_id = nid
            scd = assertion.subject.subject_confirmation[0].subject_confirmation_data
            scd.recipient = recipient or None
            scd.in_response_to = in_response_to or None
            scd.not_on_or_after = not_after
            scd.not_before = None
            authn_stmt = assertion.authn_statement[0]
            authn_stmt.authn_instant = now
            authn_stmt.session_index = session_index
            assertion.attribute_statement = (
                [
                    saml.AttributeStatement(
                        attribute=[
                            factory(saml.Attribute, name=k, name_format=ATTRNAME_BASIC, attribute_value=do_ava(v))
                            for k, v in attributes.items()
                        ]
                    )
                ]
                if attributes
                else []
            )

            info = {
                "response_id": response.id,
                "assertion_id": assertion.id,
                "name_id": nid.text,
                "name_id_format": nid.format,
                "session_index": session_index,
                "signed_response": sign_response,
                "signed_assertion": sign_assertion,
                "encrypted_assertion": encrypt_assertion,
            }
            sec = self.server.sec
            cert = sec.my_cert
            if sign_assertion:
                assertion.signature = pre_signature_part(
                    assertion.id, cert, 2, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
                )
            if sign_response:
                response.signature = pre_signature_part(
                    response.id, cert, 1, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
                )
            assertion_to_sign = [(class_name(assertion), assertion.id)] if sign_assertion else []
            response_to_sign = [(class_name(response), response.id)] if sign_response else []

            if not encrypt_assertion:
                xml = signed_instance_factory(response, sec, assertion_to_sign + response_to_sign)
                return (xml if isinstance(xml, str) else response.to_string().decode("utf-8")), info

            wrapped_cert, unwrapped_cert = self.sp_encryption_cert(sp_entity_id, encrypt_cert_pem)
            assertion_tag = assertion._to_element_tree().tag
            response = pre_encrypt_assertion(response)
            xml = response.get_xml_string_with_self_contained_assertion_within_encrypted_assertion(assertion_tag)
            if isinstance(xml, bytes):
                xml = xml.decode("utf-8")
            if assertion_to_sign:
                xml = signed_instance_factory(xml, sec, assertion_to_sign)
            msg_enc, session_key = DATA_ENCRYPTION[data_encryption or self.data_encryption]
            tmp = make_temp(wrapped_cert.encode("ascii"), decode=False, delete_tmpfiles=False)
            try:
                xml = sec.encrypt_assertion(
                    xml,
                    tmp.name,
                    pre_encryption_part(
                        msg_enc=msg_enc,
                        key_enc=KEY_TRANSPORT[key_transport or self.key_transport],
                        encrypt_cert=unwrapped_cert,
                    ),
                    key_type=session_key,
                )
            finally:
                try:
                    os.unlink(tmp.name)
                except OSError:
                    pass
            if self.keyinfo_xmlns_ds if keyinfo_xmlns_ds is None else keyinfo_xmlns_ds:
                xml = declare_ds_on_encrypted_keyinfo(xml)
            if response_to_sign:
                xml = signed_instance_factory(xml, sec, response_to_sign)
            return xml, info

    # -------------------------------------------------------- SSO helpers

    def parse_authn_request(self, binding, saml_request, relay_state, sigalg, signature):
        self.ensure_sp_metadata()
        with self.lock:
            try:
                req = self.server.parse_authn_request(
                    saml_request, binding, relay_state=relay_state, sigalg=sigalg, signature=signature
                )
            except Exception as e:
                raise PeerError(400, f"AuthnRequest rejected: {type(e).__name__}: {e}") from e
            if req is None:
                raise PeerError(400, "AuthnRequest rejected")
            authn_req = req.message
            try:
                rargs = self.server.response_args(authn_req, [BINDING_HTTP_POST])
            except Exception as e:
                raise PeerError(400, f"no HTTP-POST AssertionConsumerService for this request: {e}") from e
        fmt = None
        if authn_req.name_id_policy is not None and authn_req.name_id_policy.format:
            fmt = authn_req.name_id_policy.format
            if fmt == NAMEID_UNSPECIFIED:
                fmt = None
        return {
            "request_id": authn_req.id,
            "sp_entity_id": rargs["sp_entity_id"],
            "acs": rargs["destination"],
            "relay_state": relay_state,
            "name_id_format": fmt,
            "force_authn": str(authn_req.force_authn).lower() in ("true", "1"),
            "is_passive": str(authn_req.is_passive).lower() in ("true", "1"),
            "created": time.time(),
        }

    def answer_pending(self, pending, username):
        xml, info = self.build_response(
            username=username,
            in_response_to=pending["request_id"],
            acs=pending["acs"],
            sp_entity_id=pending["sp_entity_id"],
            name_id_format=pending["name_id_format"],
        )
        return xml, info

    def expire_pending(self):
        cutoff = time.time() - PENDING_TTL
        for k in [k for k, v in self.pending.items() if v["created"] < cutoff]:
            del self.pending[k]


def declare_ds_on_encrypted_keyinfo(xml):
    """Add xmlns:ds to the <KeyInfo> that is EncryptedData's child (before any signature
    over it is made). The declaration is redundant XML-wise; some SPs need it literally."""
    start = xml.find("EncryptedData")
    if start < 0:
        return xml
    head, tail = xml[:start], xml[start:]
    m = re.search(r"<(\w+:)?KeyInfo(?=[\s>])", tail)
    if not m:
        return xml
    insert = m.end()
    return head + tail[:insert] + ' xmlns:ds="http://www.w3.org/2000/09/xmldsig#"' + tail[insert:]


def _aslist(v):
    return v if isinstance(v, list) else [v]


def b64(xml):
    return base64.b64encode(xml.encode("utf-8") if isinstance(xml, str) else xml).decode("ascii")


def post_form_html(action, field, value, relay_state):
    relay = (
        f'<input type="hidden" name="RelayState" value="{html.escape(relay_state, quote=True)}"/>'
        if relay_state is not None
        else ""
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>SAML POST</title></head><body>\n"
        f'<form id="saml-post" method="post" action="{html.escape(action, quote=True)}">\n'
        f'<input type="hidden" name="{field}" value="{html.escape(value, quote=True)}"/>\n'
        f"{relay}\n"
        '<noscript><button type="submit">Continue</button></noscript>\n'
        "</form>\n<script>document.getElementById('saml-post').submit();</script>\n"
        "</body></html>\n"
    )


def login_form_html(key, error=None):
    err = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Test IdP sign-in</title></head><body>\n"
        "<h1>Test IdP sign-in</h1>\n"
        f"{err}\n"
        '<form id="login" method="post" action="/login">\n'
        f'<input type="hidden" name="key" value="{html.escape(key, quote=True)}"/>\n'
        '<label>Username <input name="username" autocomplete="username"/></label>\n'
        '<label>Password <input name="password" type="password" autocomplete="current-password"/></label>\n'
        '<button type="submit">Sign in</button>\n'
        "</form>\n</body></html>\n"
    )


class Handler(BaseHTTPRequestHandler):
    idp: IdP = None  # set before serving
    server_version = "TesseraTestSamlIdP/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        log(f"{self.command} {self.path.split('?')[0]} -> {fmt % args}")

    # ------------------------------------------------------------ plumbing

    def send(self, status, body, content_type="text/html; charset=utf-8", headers=()):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status, obj, headers=()):
        self.send(status, json.dumps(obj) + "\n", "application/json", headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def form(self):
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.read_body().decode("utf-8"), keep_blank_values=True).items()}

    def query(self):
        q = urllib.parse.urlsplit(self.path).query
        return {k: v[0] for k, v in urllib.parse.parse_qs(q, keep_blank_values=True).items()}

    def wants_json(self):
        return "application/json" in (self.headers.get("Accept") or "")

    def session_cookie(self):
        c = cookies.SimpleCookie()
        try:
            c.load(self.headers.get("Cookie") or "")
        except cookies.CookieError:
            return None
        m = c.get("tessera_test_idp")
        return m.value if m else None

    def dispatch(self, routes):
        path = urllib.parse.urlsplit(self.path).path
        fn = routes.get(path)
        if fn is None:
            return self.send(404, "not found\n", "text/plain; charset=utf-8")
        try:
            fn()
        except PeerError as e:
            log(f"{path}: {e}")
            if self.wants_json() or path.startswith("/__"):
                self.send_json(e.status, {"error": str(e)})
            else:
                self.send(e.status, f"{e}\n", "text/plain; charset=utf-8")
        except Exception as e:  # a bug here, or pysaml2 refusing something unexpected
            traceback.print_exc(file=sys.stderr)
            self.send_json(500, {"error": f"{type(e).__name__}: {e}"})

    def do_GET(self):
        self.dispatch(
            {
                "/metadata": self.get_metadata,
                "/sso/redirect": self.get_sso_redirect,
                "/slo/redirect": self.get_slo_redirect,
                "/__health": lambda: self.send_json(200, {"ok": True}),
                "/__logout_log": lambda: self.send_json(200, self.idp.logout_log),
            }
        )

    def do_POST(self):
        self.dispatch(
            {
                "/sso/post": self.post_sso,
                "/login": self.post_login,
                "/slo/post": self.post_slo,
                "/__issue": self.post_issue,
                "/__sp_metadata": self.post_sp_metadata,
                "/__logout": self.post_logout,
            }
        )

    # ------------------------------------------------------------- routes

    def get_metadata(self):
        self.send(200, self.idp.metadata_xml, "application/samlmetadata+xml")

    def get_sso_redirect(self):
        q = self.query()
        if "SAMLRequest" not in q:
            raise PeerError(400, "SAMLRequest missing")
        pending = self.idp.parse_authn_request(
            BINDING_HTTP_REDIRECT, q["SAMLRequest"], q.get("RelayState"), q.get("SigAlg"), q.get("Signature")
        )
        self.start_login(pending)

    def post_sso(self):
        f = self.form()
        if "SAMLRequest" not in f:
            raise PeerError(400, "SAMLRequest missing")
        pending = self.idp.parse_authn_request(BINDING_HTTP_POST, f["SAMLRequest"], f.get("RelayState"), None, None)
        self.start_login(pending)

    def start_login(self, pending):
        idp = self.idp
        sid = self.session_cookie()
        with idp.lock:
            idp.expire_pending()
            session = idp.sessions.get(sid) if (sid and idp.sso_session) else None
        if session and not pending["force_authn"]:
            return self.answer(pending, session["user"], sid)
        if pending["is_passive"]:
            xml, _ = idp.build_response(
                username=None,
                in_response_to=pending["request_id"],
                acs=pending["acs"],
                sp_entity_id=pending["sp_entity_id"],
                status=STATUS_NO_PASSIVE,
            )
            return self.send_saml_post(pending["acs"], b64(xml), pending["relay_state"], {})
        key = secrets.token_urlsafe(16)
        with idp.lock:
            idp.pending[key] = pending
        if self.wants_json():
            return self.send_json(200, {"key": key, "login_url": f"{idp.base_url}/login"})
        self.send(200, login_form_html(key), headers=[("X-Pending-Key", key)])

    def post_login(self):
        idp = self.idp
        f = self.form()
        key = f.get("key", "")
        with idp.lock:
            pending = idp.pending.get(key)
        if pending is None:
            raise PeerError(400, "unknown or used login key (start again at the SP)")
        username = f.get("username", "")
        if not idp.check_password(username, f.get("password", "")):
            if self.wants_json():
                return self.send_json(401, {"error": "invalid username or password", "key": key})
            return self.send(401, login_form_html(key, "Invalid username or password."))
        with idp.lock:
            if idp.pending.pop(key, None) is None:
                raise PeerError(400, "login key already used")
        sid = self.session_cookie() if idp.sso_session else None
        with idp.lock:
            if idp.sso_session:
                if not sid or sid not in idp.sessions or idp.sessions[sid]["user"] != username:
                    sid = secrets.token_urlsafe(24)
                    idp.sessions[sid] = {"user": username, "sps": []}
        self.answer(pending, username, sid)

    def answer(self, pending, username, sid):
        idp = self.idp
        xml, info = idp.answer_pending(pending, username)
        headers = {}
        if sid and idp.sso_session:
            with idp.lock:
                sess = idp.sessions.setdefault(sid, {"user": username, "sps": []})
                sess["sps"].append(
                    {
                        "sp_entity_id": pending["sp_entity_id"],
                        "name_id": info["name_id"],
                        "name_id_format": info["name_id_format"],
                        "session_index": info["session_index"],
                    }
                )
            headers["Set-Cookie"] = f"tessera_test_idp={sid}; Path=/; HttpOnly; SameSite=Lax"
        self.send_saml_post(pending["acs"], b64(xml), pending["relay_state"], headers, info)

    def send_saml_post(self, acs, saml_response_b64, relay_state, headers, info=None):
        hdrs = list(headers.items())
        if self.wants_json():
            body = {"acs": acs, "SAMLResponse": saml_response_b64, "RelayState": relay_state}
            if info:
                body["info"] = info
            return self.send_json(200, body, hdrs)
        self.send(200, post_form_html(acs, "SAMLResponse", saml_response_b64, relay_state), headers=hdrs)

    # --------------------------------------------------------------- SLO

    def get_slo_redirect(self):
        q = self.query()
        self.handle_slo(BINDING_HTTP_REDIRECT, q)

    def post_slo(self):
        self.handle_slo(BINDING_HTTP_POST, self.form())

    def handle_slo(self, binding, params):
        idp = self.idp
        idp.ensure_sp_metadata()
        relay = params.get("RelayState")
        if "SAMLResponse" in params:
            with idp.lock:
                try:
                    resp = idp.server.parse_logout_request_response(params["SAMLResponse"], binding)
                except Exception as e:
                    raise PeerError(400, f"LogoutResponse rejected: {type(e).__name__}: {e}") from e
                status = resp.response.status.status_code.value if resp and resp.response.status else None
                idp.logout_log.append({"type": "LogoutResponse", "binding": binding, "status": status,
                                       "in_response_to": resp.response.in_response_to if resp else None})
            return self.send(200, f"logout response received: {status}\n", "text/plain; charset=utf-8")
        if "SAMLRequest" not in params:
            raise PeerError(400, "SAMLRequest or SAMLResponse missing")
        with idp.lock:
            try:
                req = idp.server.parse_logout_request(
                    params["SAMLRequest"], binding, relay_state=relay,
                    sigalg=params.get("SigAlg"), signature=params.get("Signature"),
                )
            except Exception as e:
                raise PeerError(400, f"LogoutRequest rejected: {type(e).__name__}: {e}") from e
            msg = req.message
            sp_entity_id = msg.issuer.text.strip()
            name_id = msg.name_id.text if msg.name_id is not None else None
            session_indexes = [si.text for si in (msg.session_index or [])]
            ended = 0
            for sid, sess in list(idp.sessions.items()):
                before = len(sess["sps"])
                sess["sps"] = [
                    s for s in sess["sps"]
                    if not (s["sp_entity_id"] == sp_entity_id and s["name_id"] == name_id
                            and (not session_indexes or s["session_index"] in session_indexes))
                ]
                if len(sess["sps"]) != before:
                    ended += 1
                    del idp.sessions[sid]
            idp.logout_log.append({"type": "LogoutRequest", "binding": binding, "sp_entity_id": sp_entity_id,
                                   "name_id": name_id, "session_indexes": session_indexes,
                                   "signed": bool(params.get("Signature")) or msg.signature is not None,
                                   "idp_sessions_ended": ended})
            out_binding, location, _ = idp.sp_slo_endpoint(sp_entity_id)
            if out_binding is None:
                raise PeerError(400, f"SP {sp_entity_id!r} has no SingleLogoutService in its metadata")
            resp = idp.server.create_logout_response(msg, [out_binding], sign=(out_binding == BINDING_HTTP_POST))
            info = idp.server.apply_binding(out_binding, str(resp), location, relay or "", response=True,
                                            sign=True, sigalg=SIG_RSA_SHA256)
        clear = [("Set-Cookie", "tessera_test_idp=; Path=/; Max-Age=0")]
        if out_binding == BINDING_HTTP_REDIRECT:
            url = dict(info["headers"])["Location"]
            if self.wants_json():
                return self.send_json(200, {"binding": "redirect", "url": url}, clear)
            return self.send(302, "", "text/plain", [("Location", url)] + clear)
        b = b64(str(resp))
        if self.wants_json():
            return self.send_json(200, {"binding": "post", "url": location, "SAMLResponse": b, "RelayState": relay}, clear)
        self.send(200, post_form_html(location, "SAMLResponse", b, relay), headers=clear)

    def post_logout(self):
        """IdP-initiated logout: JSON {"user": "alice"} -> LogoutRequests for each SP session."""
        idp = self.idp
        try:
            body = json.loads(self.read_body() or b"{}")
        except ValueError as e:
            raise PeerError(400, f"body is not JSON: {e}") from e
        user = body.get("user")
        out = []
        with idp.lock:
            for sid, sess in list(idp.sessions.items()):
                if sess["user"] != user:
                    continue
                for s in sess["sps"]:
                    binding, _resp_loc, location = idp.sp_slo_endpoint(s["sp_entity_id"])
                    if binding is None:
                        continue
                    req_id, req = idp.server.create_logout_request(
                        location, s["sp_entity_id"],
                        name_id=saml.NameID(format=s["name_id_format"], text=s["name_id"],
                                            name_qualifier=idp.entity_id, sp_name_qualifier=s["sp_entity_id"]),
                        session_indexes=[s["session_index"]],
                        sign=(binding == BINDING_HTTP_POST),
                        expire=utc_instant(300),
                    )
                    info = idp.server.apply_binding(binding, str(req), location, body.get("relay_state", ""),
                                                    sign=True, sigalg=SIG_RSA_SHA256)
                    entry = {"sp_entity_id": s["sp_entity_id"], "request_id": req_id, "session_index": s["session_index"]}
                    if binding == BINDING_HTTP_REDIRECT:
                        entry.update(binding="redirect", url=dict(info["headers"])["Location"])
                    else:
                        entry.update(binding="post", url=location, SAMLRequest=b64(str(req)))
                    out.append(entry)
                del idp.sessions[sid]
        self.send_json(200, {"requests": out})

    # -------------------------------------------------------------- tests

    def post_issue(self):
        """Mint a Response for given parameters (for positive and forged negative tests)."""
        idp = self.idp
        try:
            p = json.loads(self.read_body() or b"{}")
        except ValueError as e:
            raise PeerError(400, f"body is not JSON: {e}") from e
        try:
            idp.ensure_sp_metadata()
        except PeerError:
            # Minting needs no SP metadata unless the assertion is to be encrypted.
            if p.get("encrypt_assertion", idp.encrypt_assertion) and not p.get("encrypt_cert_pem"):
                raise
        acs = p.get("acs")
        if not acs:
            raise PeerError(400, "acs is required")

        def given(key):
            # absent -> None (the default applies); JSON null -> "" (the element/attribute is left out)
            return (p[key] if p[key] is not None else "") if key in p else None

        audience = given("audience")  # a string, or a list for several Audience elements
        first_audience = audience[0] if isinstance(audience, list) and audience else (audience or None)
        known = idp.sp_entity_ids()
        sp_entity_id = p.get("sp_entity_id") or (
            first_audience if first_audience in known else (known[0] if known else first_audience)
        )
        if not sp_entity_id:
            raise PeerError(400, "audience (or sp_entity_id) is required when no SP metadata is loaded")
        username = p.get("user")
        if username is not None and username not in idp.users:
            raise PeerError(400, f"unknown user {username!r}")
        if username is None and not p.get("name_id"):
            raise PeerError(400, "user or name_id is required")
        xml, info = idp.build_response(
            username=username,
            in_response_to=p.get("in_response_to"),
            acs=acs,
            sp_entity_id=sp_entity_id,
            audience=audience,
            recipient=given("recipient"),
            destination=given("destination"),
            name_id=p.get("name_id"),
            name_id_format=p.get("name_id_format"),
            attributes=p.get("attributes"),
            sign_response=p.get("sign_response"),
            sign_assertion=p.get("sign_assertion"),
            encrypt_assertion=p.get("encrypt_assertion"),
            encrypt_cert_pem=p.get("encrypt_cert_pem"),
            keyinfo_xmlns_ds=p.get("keyinfo_xmlns_ds"),
            data_encryption=p.get("data_encryption"),
            key_transport=p.get("key_transport"),
            issuer=p.get("issuer"),
            lifetime=p.get("lifetime_seconds"),
            time_offset=int(p.get("time_offset_seconds", 0)),
            session_index=p.get("session_index"),
            status=p.get("status"),
        )
        if p.get("format") == "json" or self.wants_json():
            return self.send_json(200, {"SAMLResponse": b64(xml), "xml": xml, "info": info})
        self.send(200, b64(xml), "text/plain; charset=utf-8")

    def post_sp_metadata(self):
        body = self.read_body().decode("utf-8")
        ctype = self.headers.get("Content-Type") or ""
        if "json" in ctype:
            obj = json.loads(body or "{}")
            if obj.get("url"):
                self.idp.sp_metadata_url = obj["url"]
                self.idp.sp_loaded = False
                self.idp.ensure_sp_metadata()
            elif obj.get("xml"):
                self.idp.load_sp_metadata(obj["xml"])
            else:
                raise PeerError(400, 'JSON needs "url" or "xml"')
        else:
            try:
                self.idp.load_sp_metadata(body)
            except Exception as e:
                raise PeerError(400, f"SP metadata does not load: {e}") from e
        self.send_json(200, {"sp_entity_ids": self.idp.sp_entity_ids()})


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    cfg = json.loads(sys.argv[1])
    host = cfg.get("host", "127.0.0.1")
    port = int(cfg.get("port", 0))
    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    idp = IdP(cfg, port)
    Handler.idp = idp

    def stop(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        json.dumps(
            {
                "entity_id": idp.entity_id,
                "metadata_url": f"{idp.base_url}/metadata",
                "sso_url": f"{idp.base_url}/sso/redirect",
                "slo_url": f"{idp.base_url}/slo/redirect",
                "base_url": idp.base_url,
                "port": port,
            }
        ),
        flush=True,
    )
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()

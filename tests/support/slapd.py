"""A real OpenLDAP server for tests: Debian's slapd on a free loopback port, with its own slapd.conf, an mdb
database in a temporary directory and a seeded tree, run as the current user.

    directory = Slapd(tmp_path); directory.start()      # or the `slapd` / `slapd_tls` fixtures (below)
    directory.url                  # "ldap://127.0.0.1:PORT"
    directory.add_person("carol", "pw", mail="carol@lab.example")
    directory.add_to_group("stewards", "carol"); directory.remove_from_group("stewards", "carol")
    directory.stop(); directory.start()   # an outage (same port, same data)

The tree (BASE = dc=lab,dc=example):

    ou=people   uid=alice (password ALICE_PW, in stewards), uid=bob (BOB_PW, in no group)
    ou=groups   cn=stewards, cn=admins (groupOfNames; the memberof overlay keeps memberOf on people),
                cn=laser-trainers (groupOfUniqueNames), cn=makers (posixGroup, memberUid)
    ou=services cn=fablab (SERVICE_PW): the service account for search-then-bind

With `tls=True` the server also offers STARTTLS, and ldaps:// on `ldaps_port`, with a certificate for
"localhost" only (`tls_urls`; not for 127.0.0.1) signed by a CA made here (`cafile`), and refuses simple
binds without TLS (`security simple_bind=128`): a client that skipped STARTTLS cannot sign in, so a passing
STARTTLS test shows the bind went over TLS.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import socket
import ssl
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():  # ldap3 2.9 imports names pyasn1 0.6 deprecated (as in services/ldap_login.py)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="ldap3")
    import ldap3

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

BASE = "dc=lab,dc=example"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PW = "directory-root-pw"
SERVICE_DN = f"cn=fablab,ou=services,{BASE}"
SERVICE_PW = "service-account-pw"
ALICE_PW = "alice-directory-pw"
BOB_PW = "bob-directory-pw"


def skip_reason() -> str | None:
    """Why the slapd tests cannot run here, or None."""
    for path in (SLAPD, SLAPADD):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (make system-deps installs slapd and ldap-utils)"
    if not (MODULE_DIR / "back_mdb.so").exists() and not (MODULE_DIR / "back_mdb.la").exists():
        return f"slapd's mdb backend is not in {MODULE_DIR}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ssha(password: str) -> str:
    """An OpenLDAP {SSHA} userPassword value (what `slappasswd` writes)."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def person_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


def _person_ldif(uid: str, password: str, mail: str | None, name: str) -> str:
    lines = [f"dn: {person_dn(uid)}", "objectClass: inetOrgPerson", f"uid: {uid}", f"cn: {name}",
             f"sn: {name.split()[-1]}", f"displayName: {name}", f"userPassword: {ssha(password)}"]
    if mail:
        lines.append(f"mail: {mail}")
    return "\n".join(lines) + "\n"


def seed_ldif() -> str:
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: lab\no: Example Fab Lab\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: fablab\n"
        f"userPassword: {ssha(SERVICE_PW)}\n",
        _person_ldif("alice", ALICE_PW, "alice@lab.example", "Alice Liddell"),
        _person_ldif("bob", BOB_PW, "bob@lab.example", "Bob Builder"),
    ]
    return "\n".join(entries)


# Groups are added once the server runs, so the memberof overlay writes memberOf on the people (slapadd
# bypasses overlays). A groupOfNames needs a member: the service account stands in for "nobody".
GROUP_ENTRIES: dict[str, tuple[list[str], dict[str, list[str]]]] = {
    "stewards": (["groupOfNames"], {"member": [SERVICE_DN, person_dn("alice")]}),
    "admins": (["groupOfNames"], {"member": [SERVICE_DN]}),
    "laser-trainers": (["groupOfUniqueNames"], {"uniqueMember": [SERVICE_DN]}),
    "makers": (["posixGroup"], {"gidNumber": ["5000"], "memberUid": ["nobody"]}),
}


def _slapd_conf(directory: Path, tls: tuple[Path, Path, Path] | None) -> str:
    schemas = "\n".join(f"include {SCHEMA_DIR / n}.schema" for n in ("core", "cosine", "nis", "inetorgperson"))
    tls_lines = ""
    if tls:
        ca, cert, key = tls
        tls_lines = (f"TLSCACertificateFile {ca}\nTLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n"
                     "security simple_bind=128\n")
    return f"""{schemas}
pidfile {directory}/slapd.pid
argsfile {directory}/slapd.args
modulepath {MODULE_DIR}
moduleload back_mdb
moduleload memberof
{tls_lines}
database mdb
maxsize 16777216
suffix "{BASE}"
rootdn "{ADMIN_DN}"
rootpw {ssha(ADMIN_PW)}
directory {directory}/db
index objectClass,uid,mail,member,uniqueMember,memberUid eq

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to *
  by self read
  by users read
  by * none
"""


def make_ca_and_cert(directory: Path, host: str = "localhost") -> tuple[Path, Path, Path]:
    """(ca.pem, cert.pem, key.pem): a throwaway CA and a server certificate for the DNS name `host` only (so
    a client that connects to 127.0.0.1 must find the name wrong) that it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fablab test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


class Slapd:
    host = "127.0.0.1"

    def __init__(self, directory: Path, *, tls: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.ldaps_port = free_port() if tls else 0
        self.tls = make_ca_and_cert(directory) if tls else None
        self.cafile = str(self.tls[0]) if self.tls else ""
        self.conf = directory / "slapd.conf"
        self.log = directory / "slapd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        (directory / "db").mkdir()
        self.conf.write_text(_slapd_conf(directory, self.tls))
        subprocess.run([SLAPADD, "-f", str(self.conf), "-b", BASE], input=seed_ldif().encode(), check=True,
                       capture_output=True)
        self._seeded_groups = False

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def tls_urls(self) -> tuple[str, str]:
        """(ldap:// for STARTTLS, ldaps://), by the name in the certificate."""
        return f"ldap://localhost:{self.port}", f"ldaps://localhost:{self.ldaps_port}"

    def start(self, timeout: float = 10.0) -> None:
        with self.log.open("ab") as log:
            listen = f"{self.url}/" + (f" ldaps://{self.host}:{self.ldaps_port}/" if self.tls else "")
            self.proc = subprocess.Popen([SLAPD, "-h", listen, "-f", str(self.conf), "-d", "0"],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"slapd did not answer on {self.url} within {timeout}s")
            time.sleep(0.05)
        if not self._seeded_groups:
            for cn, (classes, attrs) in GROUP_ENTRIES.items():
                self._admin_call("add", group_dn(cn), classes, {"cn": cn, **attrs})
            self._seeded_groups = True

    def _answers(self) -> bool:
        try:
            socket.create_connection((self.host, self.port), timeout=1).close()
        except OSError:
            return False
        conn = ldap3.Connection(ldap3.Server(self.host, port=self.port, get_info=ldap3.NONE, connect_timeout=1),
                                receive_timeout=1)
        try:
            conn.open()
            return bool(conn.search("", "(objectClass=*)", search_scope=ldap3.BASE))
        except ldap3.core.exceptions.LDAPException:
            return False
        finally:
            conn.unbind()
            if conn.socket is not None:
                conn.socket.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    # --- changing the tree while it runs (as the root DN, so the overlays see it) -----------------------

    def _admin_call(self, op: str, *args: object, **kwargs: object) -> None:
        tls = None
        if self.tls:
            tls = ldap3.Tls(validate=ssl.CERT_NONE)  # the fixture's own admin link; the tests verify
        conn = ldap3.Connection(ldap3.Server(self.host, port=self.port, get_info=ldap3.NONE, tls=tls),
                                ADMIN_DN, ADMIN_PW, receive_timeout=5)
        conn.open()
        if self.tls:
            conn.start_tls()
        assert conn.bind(), conn.result
        try:
            assert getattr(conn, op)(*args, **kwargs), f"{op} {args}: {conn.result}"
        finally:
            conn.unbind()

    def add_person(self, uid: str, password: str, *, mail: str | None = None, name: str | None = None,
                   extra: dict[str, list[str]] | None = None) -> str:
        name = name or uid.title()
        attrs: dict[str, object] = {"uid": uid, "cn": name, "sn": name.split()[-1], "displayName": name,
                                    "userPassword": ssha(password), **(extra or {})}
        if mail:
            attrs["mail"] = mail
        self._admin_call("add", person_dn(uid), ["inetOrgPerson"], attrs)
        return person_dn(uid)

    def modify(self, dn: str, changes: dict[str, list[tuple[str, list[str]]]]) -> None:
        self._admin_call("modify", dn, changes)

    def _member_change(self, op: str, group: str, uid: str) -> None:
        classes, attrs = GROUP_ENTRIES[group]
        attr = next(a for a in ("member", "uniqueMember", "memberUid") if a in attrs)
        value = uid if attr == "memberUid" else person_dn(uid)
        self.modify(group_dn(group), {attr: [(op, [value])]})

    def add_to_group(self, group: str, uid: str) -> None:
        self._member_change(ldap3.MODIFY_ADD, group, uid)

    def remove_from_group(self, group: str, uid: str) -> None:
        self._member_change(ldap3.MODIFY_DELETE, group, uid)


def _started(tmp_path_factory: pytest.TempPathFactory, *, tls: bool) -> Iterator[Slapd]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    server = Slapd(tmp_path_factory.mktemp("slapd-tls" if tls else "slapd"), tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Named so that a test module can import them without shadowing its parameters:
#     from tests.support.slapd import slapd_fixture, slapd_tls_fixture  # noqa: F401 (fixtures)
@pytest.fixture(name="slapd")
def slapd_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A fresh directory per test (a fraction of a second to start)."""
    yield from _started(tmp_path_factory, tls=False)


@pytest.fixture(name="slapd_tls")
def slapd_tls_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """The same, offering STARTTLS and ldaps://, and refusing simple binds in the clear."""
    yield from _started(tmp_path_factory, tls=True)

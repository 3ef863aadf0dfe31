"""A real Dovecot IMAP server on loopback, run from its own config file in a temp folder.

The system configuration is never touched: ``dovecot -c FILE`` reads a file
written here, listens on 127.0.0.1 and a free port, keeps users in a
``passwd-file`` per user with ``{PLAIN}`` passwords and their mail in Maildirs under
the same folder. Users are added while it runs (each user has their own passwd file,
read when they first log in), so each test gets its own mailbox.

Mails are put in with IMAP APPEND (:meth:`Dovecot.append`).
"""

from __future__ import annotations

import imaplib
import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.services import free_port, missing, port_open

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
INSTALL_HINT = "install Debian's dovecot-imapd (scripts/services install, as root)"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = courrier-test-{tag}
log_path = {root}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
default_internal_user = {internal_user}
default_login_user = {login_user}
mail_max_userip_connections = 200
protocol imap {{
  mail_max_userip_connections = 200
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
  # no growing delay after failed logins: tests log in wrongly on purpose
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  chroot =
}}
"""


@dataclass(frozen=True)
class MailboxUser:
    """One IMAP account on the test server."""

    host: str
    port: int
    username: str
    password: str


class Dovecot:
    """Dovecot on 127.0.0.1 from a config file in ``root``; start, stop, restart, add users."""

    def __init__(self, root: Path | None = None, *, tls: tuple[Path, Path] | None = None) -> None:
        """``tls`` is ``(certificate, key)`` PEM files: STARTTLS on ``port``, TLS on ``tls_port``."""
        if not Path(DOVECOT).exists():
            missing("Dovecot", INSTALL_HINT)
        self.root = root or Path(tempfile.mkdtemp(prefix="courrier-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        ssl = f"ssl = yes\nssl_cert = <{tls[0]}\nssl_key = <{tls[1]}" if tls else "ssl = no"
        self.config = self.root / "dovecot.conf"
        self.users = self.root / "users"
        self.uid, self.gid = self._mail_owner()
        (self.root / "mail").mkdir(exist_ok=True)
        os.chown(self.root / "mail", self.uid, self.gid)
        self.users.mkdir(exist_ok=True)
        self.config.write_text(
            CONFIG.format(
                root=self.root,
                tag=uuid.uuid4().hex[:8],
                uid=self.uid,
                gid=self.gid,
                port=self.port,
                imaps_port=self.tls_port,
                ssl=ssl,
                internal_user="dovecot" if os.geteuid() == 0 else _login_name(),
                login_user="dovenull" if os.geteuid() == 0 else _login_name(),
            )
        )

    @staticmethod
    def _mail_owner() -> tuple[int, int]:
        """Mail files belong to a fixed uid >= 1000 as root (Dovecot refuses root's mail)."""
        if os.geteuid() == 0:
            return 1000, 1000
        return os.getuid(), os.getgid()

    def start(self) -> Dovecot:
        # The daemon keeps inherited descriptors open: send its output to a file, not a pipe.
        errors = self.root / "start.err"
        with errors.open("w") as err:
            code = subprocess.call(
                [DOVECOT, "-c", str(self.config)], stdin=subprocess.DEVNULL, stdout=err, stderr=err
            )
        if code != 0:
            missing("Dovecot", f"it did not start: {errors.read_text().strip()[:300]}")
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                missing("Dovecot", f"it did not listen on {self.port}: {self.log()[-300:]}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        subprocess.call(
            [DOVECOT, "-c", str(self.config), "stop"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.02)
        pid_file = self.root / "run" / "master.pid"
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop for good (SIGTERM to the master, quicker than ``dovecot stop``); remove files."""
        pid_file = self.root / "run" / "master.pid"
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            self.stop()
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def add_user(self, name: str | None = None, password: str = "secret") -> MailboxUser:
        """A new account with an empty INBOX; the name is unique unless given."""
        name = name or f"u{uuid.uuid4().hex[:10]}"
        with (self.users / name).open("w") as handle:
            handle.write(
                f"{name}:{{PLAIN}}{password}:{self.uid}:{self.gid}::{self.root}/home/{name}::\n"
            )
        return MailboxUser("127.0.0.1", self.port, name, password)

    def connect(self, user: MailboxUser) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(user.username, user.password)
        return client

    def append(self, user: MailboxUser, *mails: bytes, folder: str = "INBOX") -> None:
        """Put mails into ``folder`` with IMAP APPEND (the folder is created if needed)."""
        client = self.connect(user)
        try:
            if folder != "INBOX":
                client.create(folder)
            when = imaplib.Time2Internaldate(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
            for mail in mails:
                status, data = client.append(folder, "", when, mail)
                assert status == "OK", data
        finally:
            client.logout()

    def count(self, user: MailboxUser, folder: str = "INBOX") -> int:
        client = self.connect(user)
        try:
            status, data = client.select(folder, readonly=True)
            assert status == "OK", data
            return int(data[0] or 0)
        finally:
            client.logout()

    def flags(self, user: MailboxUser, folder: str = "INBOX") -> list[bytes]:
        """The FETCH FLAGS lines of every mail in ``folder``."""
        client = self.connect(user)
        try:
            client.select(folder, readonly=True)
            _, data = client.fetch("1:*", "(UID FLAGS)")
            return [item for item in data if isinstance(item, bytes)]
        finally:
            client.logout()


def _login_name() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def message_ids_with_keyword(server: Dovecot, user: MailboxUser, keyword: str) -> set[str]:
    """The Message-IDs of the mails in INBOX that carry ``keyword``."""
    client = server.connect(user)
    try:
        client.select("INBOX", readonly=True)
        _, data = client.search(None, "KEYWORD", keyword)
        numbers = (data[0] or b"").split()
        if not numbers:
            return set()
        _, data = client.fetch(b",".join(numbers), "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        found = set()
        for item in data:
            if isinstance(item, tuple):
                header = item[1].decode("ascii", errors="replace")
                found.add(header.partition(":")[2].strip())
        return found
    finally:
        client.logout()


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 / localhost it signed: (ca, cert, key) files."""

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Courrier test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths

"""A private Postfix on loopback that makes real bounces and delivers them into Dovecot's Maildirs.

It runs from its own config, queue and data folders (``postfix -c DIR``), so
the system's Postfix is untouched. It listens for SMTP on 127.0.0.1 and a
free port, delivers all mail for ``club.example`` straight into one Maildir
the test Dovecot serves (that of the user it is given), ``bounces+<token>``
addresses included (``recipient_delimiter = +``: VERP), and refuses mail for
a few test domains the way remote servers do (:data:`TRANSPORTS`):
``hard.test`` an unknown user (5.1.1), ``full.test`` a full mailbox (5.2.2),
``blocked.test`` a spam rejection (5.7.1); ``soft.test`` is deferred
(4.4.1) and retried. Each refusal becomes a real RFC 3464 delivery status
notification, written by Postfix's own bounce daemon and sent back to the
envelope sender; ``options`` (e.g. ``delay_warning_time``) go into main.cf.
Nothing leaves the machine (``default_transport = error``). Needs root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tests.support.services import free_port, missing, port_open

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
myhostname = mx.club.example
mydomain = club.example
myorigin = club.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
virtual_mailbox_domains = club.example
virtual_mailbox_base = {mail_root}
virtual_mailbox_maps = static:{mailbox}/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
transport_maps = texthash:{root}/conf/transport
default_transport = error:5.4.4 nothing leaves this test machine
# accept at RCPT time and bounce afterwards: a real DSN instead of a synchronous refusal
local_recipient_maps =
smtpd_reject_unlisted_recipient = no
maillog_file = {root}/data/maillog
maillog_file_prefixes = {root}
syslog_name = postfix-courrier-test
recipient_delimiter = +
"""

#: how the test domains refuse mail (Postfix's error and retry transports)
TRANSPORTS = """\
hard.test error:5.1.1 User unknown
full.test error:5.2.2 mailbox full
blocked.test error:5.7.1 rejected as spam
soft.test retry:4.4.1 host not reachable, try again later
"""


class Postfix:
    """Postfix from its own folders: ``start``, ``stop``, ``smtp_port``."""

    def __init__(
        self,
        mail_root: Path,
        uid: int,
        gid: int,
        mailbox: str,
        options: Mapping[str, str] | None = None,
    ) -> None:
        """Deliver all mail for ``club.example`` to the Maildir ``mail_root/mailbox/``, as uid:gid."""
        if not Path(POSTFIX).exists():
            missing("Postfix", "install Debian's postfix (scripts/services install, as root)")
        if os.geteuid() != 0:
            missing("Postfix", "a private Postfix instance needs root")
        self.root = Path(tempfile.mkdtemp(prefix="courrier-postfix-"))
        self.root.chmod(0o755)
        self.smtp_port = free_port()
        conf = self.root / "conf"
        conf.mkdir()
        (self.root / "queue").mkdir()
        (self.root / "data").mkdir()
        os.chown(self.root / "data", pwd.getpwnam("postfix").pw_uid, -1)
        for name in ("master.cf", "dynamicmaps.cf", "postfix-files"):
            if Path("/etc/postfix", name).exists():
                shutil.copy(Path("/etc/postfix", name), conf / name)
        for name in ("dynamicmaps.cf.d", "postfix-files.d"):
            if Path("/etc/postfix", name).is_dir():
                shutil.copytree(Path("/etc/postfix", name), conf / name)
        (conf / "main.cf").write_text(
            MAIN_CF.format(root=self.root, mail_root=mail_root, uid=uid, gid=gid, mailbox=mailbox)
        )
        (conf / "transport").write_text(TRANSPORTS)
        self._postconf("-MX", "smtp/inet")
        self._postconf(
            "-M", f"127.0.0.1:{self.smtp_port}/inet=127.0.0.1:{self.smtp_port} inet n - n - - smtpd"
        )
        self._postconf("-F", "*/*/chroot = n")
        for name, value in (options or {}).items():
            self._postconf("-e", f"{name} = {value}")

    def _postconf(self, *args: str) -> None:
        subprocess.run(
            ["postconf", "-c", str(self.root / "conf"), *args], check=True, capture_output=True
        )

    def _control(self, action: str) -> int:
        # postfix prints its errors only to a terminal or syslog; they land in data/maillog.
        return subprocess.call(
            [POSTFIX, "-c", str(self.root / "conf"), action],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> Postfix:
        if self._control("start") != 0:
            missing("Postfix", f"it did not start: {self.log()[-400:]}")
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.smtp_port):
            if time.monotonic() > deadline:
                missing("Postfix", f"it did not listen on {self.smtp_port}: {self.log()[-400:]}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        path = self.root / "data" / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def cleanup(self) -> None:
        self._control("stop")
        shutil.rmtree(self.root, ignore_errors=True)

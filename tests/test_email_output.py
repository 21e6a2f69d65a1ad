"""The email output against a real local SMTP server (aiosmtpd) that requires STARTTLS and
AUTH: what a digest mail holds (headers, text and HTML parts), paper text escaped and kept out
of headers, 4xx retried and 5xx pausing, settings checked; through `paperbridge deliver`,
every paper mailed exactly once; and the HTML part opened in headless Chromium."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.email.publisher import EmailPublisher
from adapters.email.settings import PASSWORD_ENV, EmailSettings, email_problems
from bridge.config import Settings
from bridge.delivery import Destination, DigestItem, DigestRun, DigestSubscription
from bridge.models import Hit, Match, Paper, StoredPaper

FIXTURES = Path(__file__).parent / "fixtures"
HF_FILE = FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json"
T0 = dt.datetime(2026, 6, 1, 5, 0, tzinfo=dt.UTC)
USER, PASSWORD = "bridge", "s3cret-pa55"
HOSTILE = "<script>alert(1)</script> @everyone\r\nBcc: victim@example.org <b>bold</b>"

# -- a local SMTP server with STARTTLS and AUTH -------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, made here (nothing shipped or fetched)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    login: str | None
    raw: bytes


@dataclass
class Mailbox:
    """The server's handler: keeps what it accepted; ``fail_rcpt``/``fail_data`` make it answer
    the next RCPT or DATA with that reply instead (a 4xx or a 5xx)."""

    received: list[Received] = field(default_factory=list)
    fail_rcpt: str | None = None
    fail_data: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.fail_rcpt:
            return self.fail_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.fail_data:
            return self.fail_data
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else None
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                message,
                session.ssl is not None,
                login,
                envelope.original_content,
            )
        )
        return "250 Message accepted"


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox
    ca_file: Path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_server(certificate: tuple[Path, Path]) -> Iterator[SmtpServer]:
    import ssl

    cert_path, key_path = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,  # nothing but STARTTLS and EHLO before TLS is up
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, mailbox, cert_path)
    finally:
        controller.stop()


def mail_settings(server: SmtpServer, **overrides: Any) -> EmailSettings:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": "starttls",
        "sender": "papers@lab.example",
        "sender_name": "Lab papers",
        "username": USER,
        "password": PASSWORD,
        "timeout": 5.0,
        "ca_file": str(server.ca_file),
    }
    values.update(overrides)
    return EmailSettings(**values)


def item(n: int, title: str = "Generalization in deep networks", **kw: Any) -> DigestItem:
    abstract = kw.pop("abstract", "We study generalisation of deep networks in the wild.")
    paper = Paper(f"2606.{n:05d}", title, abstract=abstract, sources=("hf",), **kw)
    start = abstract.find("generalisation")
    hits = (Hit("abstract", "generalisation", start, start + 14),) if start >= 0 else ()
    return DigestItem(StoredPaper(paper, n, T0, True), Match("s", paper.arxiv_id, hits))


DEST = Destination("mailto-1", "mailto", "team@lab.example", name="team")
SUB = DigestSubscription("s", DEST.id, "generalization", name="Generalisation watch")


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    markup = message.get_body(("html",))
    assert text is not None and markup is not None
    # As received: lines end in CRLF on the wire.
    return (
        text.get_content().replace("\r\n", "\n"),
        markup.get_content().replace("\r\n", "\n"),
    )


# -- what a digest mail holds --------------------------------------------------------------------


async def test_a_digest_is_one_multipart_mail_over_starttls_with_auth(
    smtp_server: SmtpServer,
) -> None:
    publisher = EmailPublisher(mail_settings(smtp_server))
    items = [item(1), item(2, "Scaling laws for world models", authors=("Ada", "Grace"))]
    outcome = await publisher.send_digest(
        DEST, items, subscription=SUB, run=DigestRun(DEST.id, "s", None, 2)
    )
    assert outcome.status == "sent", outcome
    [got] = smtp_server.mailbox.received
    assert got.tls and got.login == USER
    assert got.sender == "papers@lab.example" and got.recipients == ["team@lab.example"]
    message = got.message
    assert message.get_content_type() == "multipart/alternative"
    assert str(message["From"]) == "Lab papers <papers@lab.example>"
    assert str(message["To"]) == "team@lab.example"
    assert message["Subject"] == (
        "2 new papers for “generalization”: Generalization in deep networks …"
    )
    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith("@lab.example>")
    sent_at = parsedate_to_datetime(message["Date"])
    assert abs((sent_at - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    assert (
        message["List-Id"]
        == '"Generalisation watch" <generalisation-watch.paperbridge.lab.example>'
    )
    assert message["List-Unsubscribe"].strip() == (
        "<mailto:papers@lab.example?subject=unsubscribe%20Generalisation%20watch>"
    )
    assert message["Auto-Submitted"] == "auto-generated"
    text, markup = parts(message)
    assert text.startswith("2 new papers for “generalization”\n")
    assert "Scaling laws for world models" in text and "Ada, Grace" in text
    assert "https://arxiv.org/abs/2606.00001" in text
    assert '<a href="https://arxiv.org/abs/2606.00002">Scaling laws for world models</a>' in markup
    # The matched words bold, as in Slack and Discord, and why the paper is there.
    assert "<strong>generalisation</strong>" in markup
    # 7-bit on the wire (quoted-printable), so no server needs 8BITMIME.
    assert got.raw.isascii() and "“" in text
    assert items[0].why and items[0].why in markup


async def test_a_paper_sent_again_after_a_crash_says_it_may_repeat(smtp_server: SmtpServer) -> None:
    again = DigestItem(item(1).stored, item(1).match, uncertain=True)
    outcome = await EmailPublisher(mail_settings(smtp_server)).send_digest(DEST, [again, item(2)])
    assert outcome.status == "sent"
    text, markup = parts(smtp_server.mailbox.received[0].message)
    assert text.count("(may repeat an earlier mail)") == 1
    assert markup.count("(may repeat an earlier mail)") == 1


async def test_paper_text_is_escaped_in_html_and_kept_out_of_headers(
    smtp_server: SmtpServer,
) -> None:
    publisher = EmailPublisher(mail_settings(smtp_server))
    hostile = item(
        7,
        HOSTILE,
        authors=("<img src=x onerror=alert(2)>",),
        abstract="An <iframe src=javascript:alert(3)> abstract about generalisation.",
    )
    outcome = await publisher.send_digest(DEST, [hostile], subscription=SUB)
    assert outcome.status == "sent", outcome
    [got] = smtp_server.mailbox.received
    # No header injected: one recipient, no Bcc, the subject one line.
    assert got.recipients == ["team@lab.example"]
    assert got.message["Bcc"] is None
    subject = got.message["Subject"]
    assert "\r" not in subject and "\n" not in subject
    assert subject.startswith(
        "1 new paper for “generalization”: <script>alert(1)</script> @everyone"
    )
    _, markup = parts(got.message)
    for raw in ("<script>", "<img src=x", "<iframe", "<b>bold</b>"):
        assert raw not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt; @everyone" in markup
    assert "&lt;img src=x onerror=alert(2)&gt;" in markup


async def test_the_unsubscribe_header_can_be_a_page(smtp_server: SmtpServer) -> None:
    settings = mail_settings(smtp_server, unsubscribe="https://papers.lab.example/status")
    outcome = await EmailPublisher(settings).send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == "sent"
    [got] = smtp_server.mailbox.received
    assert got.message["List-Unsubscribe"].strip() == "<https://papers.lab.example/status>"


async def test_a_notice_is_mailed_too(smtp_server: SmtpServer) -> None:
    from bridge.delivery import Notice

    notice = Notice(1, DEST.id, "source-down", source="hf", since=T0)
    outcome = await EmailPublisher(mail_settings(smtp_server)).send_notice(DEST, notice)
    assert outcome.status == "sent"
    [got] = smtp_server.mailbox.received
    assert got.message["Subject"].startswith("paperbridge: Hugging Face Daily Papers has not")
    text, markup = parts(got.message)
    assert "will come late, not be lost" in text and "will come late" in markup


# -- what the server says decides the outcome ---------------------------------------------------


@pytest.mark.parametrize(
    ("where", "reply", "status"),
    [
        ("rcpt", "450 4.2.0 Mailbox busy, greylisted", "retry"),
        ("rcpt", "550 5.1.1 No such user", "permanent"),
        ("data", "451 4.3.0 Queue full, try later", "retry"),
        ("data", "554 5.7.1 Message rejected as spam", "permanent"),
    ],
)
async def test_4xx_is_retried_and_5xx_pauses(
    smtp_server: SmtpServer, where: str, reply: str, status: str
) -> None:
    setattr(smtp_server.mailbox, f"fail_{where}", reply)
    outcome = await EmailPublisher(mail_settings(smtp_server)).send_digest(DEST, [item(1)])
    assert outcome.status == status
    assert reply.split(" ", 1)[0] in outcome.reason
    assert not smtp_server.mailbox.received


async def test_a_wrong_password_pauses_and_is_never_shown(smtp_server: SmtpServer) -> None:
    settings = mail_settings(smtp_server, password="wrong-password-123")
    outcome = await EmailPublisher(settings).send_digest(DEST, [item(1)])
    assert outcome.status == "permanent"
    assert "535" in outcome.reason and "PAPERBRIDGE_SMTP_PASSWORD" in outcome.reason
    assert "wrong-password-123" not in outcome.reason
    assert "wrong-password-123" not in repr(settings)


async def test_an_untrusted_certificate_pauses(smtp_server: SmtpServer) -> None:
    outcome = await EmailPublisher(mail_settings(smtp_server, ca_file=None)).send_digest(
        DEST, [item(1)]
    )
    assert outcome.status == "permanent"
    assert "certificate is not trusted" in outcome.reason


async def test_a_server_that_is_down_or_silent_is_retried(tmp_path: Path) -> None:
    closed = SmtpServer("127.0.0.1", free_port(), Mailbox(), tmp_path / "none.pem")
    outcome = await EmailPublisher(mail_settings(closed, ca_file=None)).send_digest(DEST, [item(1)])
    assert outcome.status == "retry" and "connection refused" in outcome.reason
    # A server that accepts the connection and never says a word: the timeout, then a retry.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        mute = SmtpServer("127.0.0.1", silent.getsockname()[1], Mailbox(), closed.ca_file)
        settings = mail_settings(mute, ca_file=None, timeout=0.5)
        outcome = await EmailPublisher(settings).send_digest(DEST, [item(1)])
    assert outcome.status == "retry" and "did not answer in time" in outcome.reason
    assert not outcome.maybe_sent


async def test_starttls_that_the_server_does_not_offer_is_refused() -> None:
    plain = Mailbox()
    controller = Controller(plain, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        server = SmtpServer("127.0.0.1", controller.port, plain, Path("/nonexistent"))
        settings = mail_settings(server, username=None, password=None, ca_file=None)
        outcome = await EmailPublisher(settings).send_digest(DEST, [item(1)])
    finally:
        controller.stop()
    assert outcome.status == "permanent" and "STARTTLS" in outcome.reason
    assert not plain.received  # nothing went out in the clear


# -- settings ----------------------------------------------------------------------------------


def problems(
    outputs: dict[str, Any], environ: dict[str, str] | None = None, **extra: Any
) -> dict[str, str]:
    settings = Settings.model_validate({"outputs": {"email": outputs}, **extra})
    return {p.key: p.problem for p in email_problems(settings, False, environ or {})}


def test_settings_are_checked() -> None:
    assert problems({"host": "smtp.lab.example", "from": "papers@lab.example"}) == {}
    found = problems({"security": "ssl", "username": "bridge", "password": "x"})
    assert set(found) == {
        "outputs.email.host",
        "outputs.email.from",
        "outputs.email.security",
        "outputs.email.username",
        "outputs.email.password",
    }
    assert "starttls, tls, none" in found["outputs.email.security"]
    assert PASSWORD_ENV in found["outputs.email.username"]
    assert PASSWORD_ENV in found["outputs.email.password"]
    with_password = problems(
        {"host": "smtp.lab.example", "from": "Lab <papers@lab.example>", "username": "b"},
        {PASSWORD_ENV: "pw"},
    )
    assert with_password == {}
    assert "outputs.email.from" in problems({"host": "h", "from": "not an address"})
    assert "outputs.email.port" in problems({"host": "h", "from": "a@b.example", "port": 0})


def test_mailto_destinations_are_checked() -> None:
    digest = {"name": "d", "query": "q", "destination": "mailto:a@b.example, c@d.example"}
    found = problems({"host": "h", "from": "a@b.example"}, digests=[digest])
    assert "one plain address" in found["digests.0.destination"]
    settings = Settings.model_validate(
        {"digests": [{"name": "d", "query": "q", "destination": "mailto:a@b.example"}]}
    )
    [missing] = email_problems(settings, False, {})
    assert missing.key == "outputs.email" and "host and from" in missing.problem


# -- through `paperbridge deliver`: exactly once ----------------------------------------------


def paperbridge(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PAPERBRIDGE_", "SLACK_", "DISCORD_"))
    }
    env[PASSWORD_ENV] = PASSWORD
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_deliver_mails_each_paper_once(smtp_server: SmtpServer, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent(f"""
        [outputs.email]
        host = "{smtp_server.host}"
        port = {smtp_server.port}
        security = "starttls"
        username = "{USER}"
        from = "Lab papers <papers@lab.example>"
        ca_file = "{smtp_server.ca_file}"
        timeout = 10

        [[digests]]
        name = "models"
        query = "model"
        destination = "mailto:team@lab.example"
        time = "08:00"
        """)
    )
    checked = paperbridge(tmp_path, "--config", str(config), "check-config")
    assert checked.returncode == 0, checked.stderr
    assert PASSWORD not in checked.stdout + checked.stderr
    # The digest exists before the papers arrive (as in a `deliver` cron job), so it gets them.
    first = paperbridge(tmp_path, "--config", str(config), "deliver")
    assert first.returncode == 0, first.stderr
    assert paperbridge(tmp_path, "import", "--announce", str(HF_FILE)).returncode == 0
    delivered = paperbridge(tmp_path, "--config", str(config), "deliver", "--now")
    assert delivered.returncode == 0, delivered.stderr
    assert PASSWORD not in delivered.stdout + delivered.stderr
    mails = smtp_server.mailbox.received
    assert len(mails) == 1, [m.message["Subject"] for m in mails]  # one message per digest
    [mail] = mails
    assert mail.tls and mail.login == USER and mail.recipients == ["team@lab.example"]
    text, markup = parts(mail.message)
    ids = {line.split()[0] for line in text.splitlines() if line.startswith("  arXiv:")}
    assert len(ids) >= 2 and mail.message["Subject"].startswith(f"{len(ids)} new papers for")
    # Through the ledger: a second run sends nothing.
    again = paperbridge(tmp_path, "--config", str(config), "deliver", "--now")
    assert again.returncode == 0, again.stderr
    assert len(smtp_server.mailbox.received) == 1


@pytest.mark.slow
def test_check_config_names_what_is_wrong(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[outputs.email]\nsecurity = "ssl"\nusername = "bridge"\n\n'
        '[[digests]]\nname = "d"\nquery = "q"\ndestination = "mailto:team@lab.example"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBRIDGE_")}
    refused = subprocess.run(
        [sys.executable, "-m", "bridge", "--config", str(config), "check-config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2
    for key in ("outputs.email.host", "outputs.email.from", "outputs.email.security"):
        assert f"config: {key}:" in refused.stderr
    assert f"outputs.email.username: is set but {PASSWORD_ENV} is not" in refused.stderr
    assert "Traceback" not in refused.stderr


# -- the HTML part in a real browser ---------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)) and not os.environ.get("CI"),
    reason="Debian's chromium and chromium-driver are not installed (scripts/test installs them)",
)
async def test_the_html_part_shows_hostile_titles_as_text_in_chromium(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    items = [item(1, HOSTILE), item(2, "Plain & simple <title>")]
    outcome = await EmailPublisher(mail_settings(smtp_server)).send_digest(
        DEST, items, subscription=SUB
    )
    assert outcome.status == "sent"
    _, markup = parts(smtp_server.mailbox.received[0].message)
    page = tmp_path / "mail.html"
    page.write_text(markup, encoding="utf-8")

    driver = _chromium(tmp_path)
    try:
        driver.get(page.as_uri())
        from selenium.webdriver.common.by import By

        titles = [h2.text for h2 in driver.find_elements(By.CSS_SELECTOR, "h2")]
        scripts = driver.find_elements(By.CSS_SELECTOR, "script, img, iframe, b")
        alerted = driver.execute_script("return typeof window.__alerted")
        logs = driver.get_log("browser")
    finally:
        driver.quit()
    assert titles == [
        " ".join(HOSTILE.split()),
        "Plain & simple <title>",
    ]
    assert scripts == [] and alerted == "undefined"
    assert [entry for entry in logs if entry["level"] == "SEVERE"] == []


def _chromium(tmp_path: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(15)
    return driver

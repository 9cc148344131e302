#!/usr/bin/env python3
"""Tessera's scale benchmark: sign-ins against the raw argon2 rate, refresh-token grants, memory
and database bytes with a million stored refresh tokens, two nodes against one on PostgreSQL,
bytes per opaque access token, sign-ins with a million users, and a purge of a million expired
artifacts while serving.

    bench/scale.py                      # everything (needs wrk; PostgreSQL binaries for 'cluster')
    BENCH_PARTS=signin,refresh bench/scale.py

Knobs (environment): BENCH_PARTS (signin,totp,refresh,million,cluster,opaque,users,purge),
BENCH_REPEAT (3), BENCH_SECONDS (10, each measured run), BENCH_CONNECTIONS (32, wrk -c),
BENCH_SIGNIN_WORKERS (4), BENCH_TOKENS (1000000, refresh tokens stored before the memory reading),
BENCH_TOTP_USERS (300 users a browser in the password + TOTP run), BENCH_OPAQUE_TOKENS (100000,
opaque access tokens issued at least before the bytes reading), BENCH_USERS (1000000) and
BENCH_USERS_FEW (1000, users in the store of the two sign-in measurements), BENCH_PURGE_ROWS
(1000000, expired artifacts to purge each cycle), BENCH_PURGE_RUN_SECONDS (1, each run during and
after the purge), BENCH_SKIP_BUILD (0), BENCH_KEEP (0; 1 keeps the run's directories: databases
and node logs); TESSERA_BIN, SIGN_INS_BIN, ARGON2_BIN: binaries to use
instead of the release build's (any of them set: no build). BENCH_REPEAT is also the number of
alternations in 'users' and of purge cycles in 'purge'.
Prints a markdown report and writes it to bench/results/scale.md. Standard library only.
"""

import base64
import html
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import http.client

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)

ALL_PARTS = ["signin", "totp", "refresh", "million", "cluster", "opaque", "users", "purge"]
PARTS = [p.strip() for p in os.environ.get("BENCH_PARTS", ",".join(ALL_PARTS)).split(",")
         if p.strip()]
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
KEEP = os.environ.get("BENCH_KEEP") == "1"
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
WORKERS = int(os.environ.get("BENCH_SIGNIN_WORKERS", "4"))
MILLION = int(os.environ.get("BENCH_TOKENS", "1000000"))
RP = "https://rp.example.com/cb"
PASSWORD = "correct horse battery"
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
TESSERA = os.environ.get("TESSERA_BIN") or os.path.join(TARGET, "release", "tessera")
ARGON2 = os.environ.get("ARGON2_BIN") or os.path.join(TARGET, "release", "examples", "argon2_rate")
SIGN_INS = os.environ.get("SIGN_INS_BIN") or os.path.join(TARGET, "release", "examples", "sign_ins")
BINARIES_GIVEN = any(os.environ.get(v) for v in ("TESSERA_BIN", "SIGN_INS_BIN", "ARGON2_BIN"))
API = "https://api.example.com"
CLIENT_CREDENTIALS = "grant_type=client_credentials&scope=read:things"

report = []


def log(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


def out(line=""):
    print(line, flush=True)
    report.append(line)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(i, s):
    return "Basic " + base64.b64encode(f"{i}:{s}".encode()).decode()


class Node:
    """A `tessera serve` in its own directory; `env` is shared by its CLI calls."""

    def __init__(self, workdir, env, port=None):
        self.dir, self.port = workdir, port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, **{"RUST_LOG": "warn", **env})
        self.env.setdefault("TESSERA_ISSUER", self.base)
        self.env["TESSERA_LISTEN"] = f"127.0.0.1:{self.port}"
        os.makedirs(workdir, exist_ok=True)
        self.log = open(os.path.join(workdir, "serve.log"), "w")
        self.proc = subprocess.Popen([TESSERA, "serve"], cwd=workdir, env=self.env,
                                     stdout=self.log, stderr=self.log)
        for _ in range(300):
            if self.proc.poll() is not None:
                break
            try:
                if status(self.base, "GET", "/readyz") == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"tessera did not start: {open(self.log.name).read()[-2000:]}")

    def cli(self, *args, env=None):
        e = dict(self.env, **(env or {}))
        r = subprocess.run([TESSERA, *args, "--output", "json"], cwd=self.dir, env=e,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"tessera {' '.join(args)}: {r.stderr}")
        return json.loads(r.stdout) if r.stdout.strip() else None

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def status(base, method, path, body=None, headers=None):
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    return c.getresponse().status


def discard(path):
    """Removes a run's directory (databases, node logs), or keeps it with BENCH_KEEP=1."""
    if KEEP:
        log(f"kept {path} (BENCH_KEEP=1)")
    else:
        shutil.rmtree(path, ignore_errors=True)


def wrk(url, script, env, seconds, connections=CONNECTIONS):
    e = dict(os.environ, **env)
    r = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency",
                        "-s", os.path.join(BENCH, script), url],
                       env=e, capture_output=True, text=True)
    m = re.search(r"BENCH_RESULT (.*)", r.stdout)
    if not m:
        raise SystemExit(f"wrk gave no result: {r.stdout[-1500:]} {r.stderr[-500:]}")
    res = dict(kv.split("=", 1) for kv in m.group(1).split())
    bad = int(res.get("non200", 0)) + int(res.get("badbody", 0)) + int(res.get("starved", 0))
    if bad:
        raise SystemExit(f"wrk saw {bad} bad responses: {r.stdout[-1500:]}")
    return float(res["rps"]), int(res["p50_us"]), int(res["p99_us"])


# ------------------------------------------------------------------------------ sign-ins

class Browser:
    """One user agent with its own cookies, keeping its connection alive."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        self.cookies = {}

    def send(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def hidden(page, name):
    m = re.search(f'name="{name}" value="([^"]*)"', page)
    if not m:
        raise SystemExit(f"no {name} in the login page: {page[:500]}")
    return html.unescape(m.group(1))


def sign_in(base, client_id, secret, username):
    """The code flow as a browser and its application do it: authorize, login form, code, token."""
    b = Browser(base)
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    import hashlib
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": RP,
        "scope": "openid offline_access", "state": "s", "nonce": "n",
        "code_challenge": challenge, "code_challenge_method": "S256", "prompt": "consent"})
    st, _, page = b.send("GET", f"/authorize?{q}")
    page = page.decode()
    form = urllib.parse.urlencode({
        "interaction": hidden(page, "interaction"), "csrf": hidden(page, "csrf"),
        "username": username, "password": PASSWORD})
    st, h, _ = b.send("POST", "/login", form,
                      {"Content-Type": "application/x-www-form-urlencoded"})
    if st != 303:
        raise SystemExit(f"sign-in answered {st}")
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(h["location"]).query)["code"][0]
    body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": RP, "code_verifier": verifier})
    st, _, data = b.send("POST", "/token", body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": basic(client_id, secret)})
    if st != 200:
        raise SystemExit(f"code exchange answered {st}: {data[:300]}")
    return json.loads(data)["refresh_token"]


def sign_ins(base, client_id, secret, seconds, tokens):
    """Sign-ins per second by WORKERS concurrent browsers for `seconds`: `examples/sign_ins`,
    one Rust thread, so that the load generator takes little of the cores the server needs."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as f:
        r = subprocess.run([SIGN_INS, base, client_id, secret, RP, PASSWORD, str(seconds),
                            str(WORKERS), f.name], capture_output=True, text=True)
        m = re.search(r"BENCH_RESULT rate=(\S+)", r.stdout)
        if r.returncode != 0 or not m:
            raise SystemExit(f"sign-ins failed: {r.stdout[-500:]} {r.stderr[-1500:]}")
        tokens.extend(t for t in f.read().split() if t)
    return float(m.group(1))


def argon2_rate(seconds):
    r = subprocess.run([ARGON2, str(seconds)], capture_output=True, text=True, check=True)
    return float(r.stdout.strip())


def web_app(node):
    for i in range(WORKERS):
        node.cli("user", "create", "--username", f"user{i}",
                 env={"TESSERA_NEW_PASSWORD": PASSWORD})
    c = node.cli("client", "create", "--type", "web", "--name", "Bench web",
                 "--redirect-uri", RP, "--consent", "auto-accept",
                 "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                 "--signing-alg", "ES256", "--id-token-alg", "ES256")
    time.sleep(1.5)  # nodes pick up CLI changes within a second
    return c["client_id"], c["client_secret"]


def part_signin(node, app, tokens):
    out("## Sign-ins (authorization code flow through the login page) vs raw argon2id")
    out()
    out(f"{WORKERS} concurrent browsers (`examples/sign_ins`), each sign-in = GET /authorize, POST /login (argon2id "
        f"verify), 303 with the code, POST /token (PKCE, ES256 ID and access tokens). Raw "
        f"argon2id = the same hash verified on every core (`examples/argon2_rate`). "
        f"{REPEAT} alternating runs of {SECONDS:g} s, medians.")
    out()
    sign_in(node.base, *app, "user0")  # warm-up
    ours, raw = [], []
    for _ in range(REPEAT):
        raw.append(argon2_rate(SECONDS))
        ours.append(sign_ins(node.base, *app, SECONDS, tokens))
    s, a = statistics.median(ours), statistics.median(raw)
    out("| | per second (median) | runs |")
    out("|---|---:|---|")
    out(f"| raw argon2id verifications | {a:.1f} | {', '.join(f'{x:.1f}' for x in raw)} |")
    out(f"| sign-ins | {s:.1f} | {', '.join(f'{x:.1f}' for x in ours)} |")
    out()
    out(f"Ratio sign-ins / raw argon2id: **{s / a:.2f}** (target >= 0.9: "
        f"{'PASS' if s / a >= 0.9 else 'MISS'}); run by run: "
        f"{', '.join(f'{x / y:.2f}' for x, y in zip(ours, raw))}")
    out()


TOTP_USERS = int(os.environ.get("BENCH_TOTP_USERS", "300"))


def part_signin_totp(node, app, workdir):
    """Sign-ins with password + TOTP (an application whose scheme asks for both) against
    password-only sign-ins, alternating, on the same node."""
    node.cli("scheme", "create", "bench-mfa", "--methods", "password+totp",
             "--acr", "urn:bench:mfa")
    c = node.cli("client", "create", "--type", "web", "--name", "Bench MFA",
                 "--redirect-uri", RP, "--consent", "auto-accept",
                 "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                 "--signing-alg", "ES256", "--id-token-alg", "ES256",
                 "--authentication-scheme", "bench-mfa")
    mfa_app = (c["client_id"], c["client_secret"])
    # Users share user0's password hash (no hashing to set them up): one apply file.
    db = sqlite3.connect(os.path.join(workdir, "tessera-data", "tessera.db"))
    doc = json.loads(db.execute("SELECT doc FROM users WHERE username = 'user0'").fetchone()[0])
    db.close()
    users = [{"username": f"mfa{i}-{k}", "password_hash": doc["password_hash"]}
             for i in range(WORKERS) for k in range(TOTP_USERS)]
    spec = os.path.join(workdir, "mfa-users.yaml")
    with open(spec, "w") as f:
        json.dump({"users": users}, f)
    node.cli("apply", "-f", spec)
    time.sleep(1.5)
    keys = os.path.join(workdir, "totp-keys.txt")
    log(f"setting up {len(users)} authenticator apps through the enrolment page")

    def totp_run(seconds):
        with tempfile.NamedTemporaryFile("r", suffix=".txt") as f:
            # The keys set up so far, read at the start; each browser appends its users' keys
            # and last steps at the end (later lines win).
            env = dict(os.environ, BENCH_TOTP_USERS=str(TOTP_USERS), BENCH_TOTP_KEYS=keys)
            r = subprocess.run([SIGN_INS, node.base, *mfa_app, RP, PASSWORD, str(seconds),
                                str(WORKERS), f.name], capture_output=True, text=True, env=env)
            m = re.search(r"BENCH_RESULT rate=(\S+)", r.stdout)
            if r.returncode != 0 or not m:
                raise SystemExit(f"TOTP sign-ins failed: {r.stdout[-500:]} {r.stderr[-1500:]}")
        return float(m.group(1))

    totp_run(1)  # set-up and warm-up
    pwd, totp = [], []
    for _ in range(REPEAT):
        pwd.append(sign_ins(node.base, *app, SECONDS, []))
        totp.append(totp_run(SECONDS))
    p, t = statistics.median(pwd), statistics.median(totp)
    out("## Sign-ins with password + TOTP vs password only")
    out()
    out(f"{WORKERS} concurrent browsers (`examples/sign_ins`). Password only: GET /authorize, POST "
        f"/login, POST /token. Password + TOTP (`BENCH_TOTP_USERS={TOTP_USERS}` users a browser, an "
        f"application whose scheme asks for both): GET /authorize, POST /login (answered with the "
        f"second-factor page), POST /login/code (RFC 6238, a code counts once), POST /token. {REPEAT} alternating "
        f"runs of {SECONDS:g} s, medians.")
    out()
    out("| | sign-ins per second (median) | runs |")
    out("|---|---:|---|")
    out(f"| password | {p:.1f} | {', '.join(f'{x:.1f}' for x in pwd)} |")
    out(f"| password + TOTP | {t:.1f} | {', '.join(f'{x:.1f}' for x in totp)} |")
    out()
    out(f"Ratio password + TOTP / password: **{t / p:.2f}** (the second factor costs one request, "
        f"a write of the user, the attempt counted and cleared, and a new session record; the "
        f"password's argon2id dominates both).")
    out()


# ------------------------------------------------------------------------------ refresh

def refresh_runs(node, app, tokens_file, seconds, repeat, label):
    env = {"BENCH_TOKENS": tokens_file, "BENCH_TOKENS_OUT": tokens_file,
           "BENCH_AUTH": basic(*app)}
    runs = []
    for _ in range(repeat):
        runs.append(wrk(node.base + "/token", "refresh.lua", env, seconds))
    return runs


def db_path(workdir):
    return os.path.join(workdir, "tessera-data", "tessera.db")


def query(db, sql, *args):
    """One value from a read-only connection of its own (the node keeps writing: WAL)."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    try:
        return c.execute(sql, args).fetchone()[0]
    finally:
        c.close()


def stored(db, kind):
    return query(db, "SELECT count(*) FROM artifacts WHERE kind = ?", kind)


def refresh_tokens_stored(db):
    return stored(db, "refresh_token")


def artifact_bytes(db):
    """Bytes the artifacts table and its indexes take (dbstat), else the whole file."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        try:
            names = [r[0] for r in c.execute(
                "SELECT name FROM sqlite_master WHERE tbl_name = 'artifacts'")]
            q = f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({','.join('?' * len(names))})"
            return c.execute(q, names).fetchone()[0], "artifacts table and indexes (dbstat)"
        except sqlite3.OperationalError:
            return os.path.getsize(db), "database file"
    finally:
        c.close()


def part_refresh(node, app, tokens, workdir):
    tokens_file = os.path.join(workdir, "refresh-tokens.txt")
    with open(tokens_file, "w") as f:
        f.write("\n".join(tokens) + "\n")
    log(f"refresh grants with {len(tokens)} refresh tokens in rotation")
    refresh_runs(node, app, tokens_file, 2, 1, "warm-up")
    runs = refresh_runs(node, app, tokens_file, SECONDS, REPEAT, "measured")
    out("## Refresh-token grants")
    out()
    out(f"`POST /token grant_type=refresh_token`, Basic auth, each answer's rotated refresh token "
        f"used by the next request (`bench/refresh.lua`, never a replay), wrk -c{CONNECTIONS}, "
        f"embedded SQLite, {REPEAT} runs of {SECONDS:g} s.")
    out()
    out("| grants/s (median) | p50 ms | p99 ms | runs (grants/s) |")
    out("|---:|---:|---:|---|")
    out(f"| {statistics.median(r[0] for r in runs):,.0f} | "
        f"{statistics.median(r[1] for r in runs) / 1000:.2f} | "
        f"{statistics.median(r[2] for r in runs) / 1000:.2f} | "
        f"{', '.join(f'{r[0]:,.0f}' for r in runs)} |")
    out()
    return tokens_file, statistics.median(r[0] for r in runs)


def part_million(node, app, tokens_file, rate, workdir):
    db = os.path.join(workdir, "tessera-data", "tessera.db")
    before_rows = refresh_tokens_stored(db)
    before_bytes, _ = artifact_bytes(db)
    while True:
        stored = refresh_tokens_stored(db)
        if stored >= MILLION:
            break
        need = (MILLION - stored) / max(rate, 100) * 1.05 + 2
        log(f"{stored:,} refresh tokens stored; refreshing for {need:.0f} s more")
        refresh_runs(node, app, tokens_file, int(min(need, 600)), 1, "fill")
    time.sleep(2)
    rows = refresh_tokens_stored(db)
    size, what = artifact_bytes(db)
    rss = node.rss_kib()
    per = (size - before_bytes) / max(rows - before_rows, 1)
    out(f"## A million stored refresh tokens")
    out()
    out(f"After {rows:,} refresh tokens are stored (rotated ones stay until they expire): "
        f"Tessera's RSS **{rss / 1024:.0f} MiB**; the {what}: {size / 2**20:.0f} MiB, "
        f"**{per:.0f} bytes per refresh token** (growth over the last {rows - before_rows:,}).")
    out()


# ------------------------------------------------------------------------------ opaque tokens

def opaque_client(node):
    """The API and an m2m client with opaque access tokens (as bench/run.sh sets them up); the
    client's Basic authorization."""
    node.cli("api", "create", "--identifier", API, "--scope", "read:things")
    c = node.cli("client", "create", "--type", "m2m", "--name", "bench-opaque",
                 "--api", API, "--scope", "read:things",
                 "--token-format", "opaque", "--introspection", "true")
    time.sleep(1.5)  # nodes pick up CLI changes within a second
    return basic(c["client_id"], c["client_secret"])


def client_credentials_token(base, auth):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("POST", "/token", CLIENT_CREDENTIALS,
                 {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit(f"client_credentials answered {r.status}: {data[:300]}")
    return json.loads(data)["access_token"]


def opaque_env(auth):
    return {"BENCH_BODY": CLIENT_CREDENTIALS, "BENCH_AUTH": auth, "BENCH_EXPECT": "access_token"}


def ms(runs, i):
    return statistics.median(r[i] for r in runs) / 1000


OPAQUE_TOKENS = int(os.environ.get("BENCH_OPAQUE_TOKENS", "100000"))


def part_opaque(workdir):
    """Opaque access tokens issued by wrk on a fresh node: their rate, and the growth of the
    artifacts table and its indexes per access-token row added."""
    node = Node(os.path.join(workdir, "opaque"), {})
    try:
        env = opaque_env(opaque_client(node))
        url, db = node.base + "/token", db_path(node.dir)
        wrk(url, "post.lua", env, 2)  # warm-up
        time.sleep(1)
        rows0, (bytes0, _) = stored(db, "access_token"), artifact_bytes(db)
        log(f"opaque access tokens: {REPEAT} runs of {SECONDS:g} s")
        runs = [wrk(url, "post.lua", env, SECONDS) for _ in range(REPEAT)]
        rate = statistics.median(r[0] for r in runs)
        while (added := stored(db, "access_token") - rows0) < OPAQUE_TOKENS:
            more = min((OPAQUE_TOKENS - added) / max(rate, 100) * 1.1 + 1, 600)
            log(f"{added:,} opaque access tokens added; issuing for {more:.0f} s more")
            wrk(url, "post.lua", env, more)
        time.sleep(2)
        rows1, (bytes1, what) = stored(db, "access_token"), artifact_bytes(db)
        payload = query(db, "SELECT avg(length(payload)) FROM artifacts "
                            "WHERE kind = 'access_token'")
    finally:
        node.stop()
        discard(node.dir)
    per = (bytes1 - bytes0) / max(rows1 - rows0, 1)
    out("## Bytes stored per opaque access token")
    out()
    out(f"`POST /token {CLIENT_CREDENTIALS}`, Basic auth, an m2m client with opaque access tokens "
        f"(each one `artifacts` row: 40-byte key, kind, client id, expiry, the introspection "
        f"answer as JSON), wrk -c{CONNECTIONS} (`bench/post.lua`), embedded SQLite, a fresh node; "
        f"{REPEAT} runs of {SECONDS:g} s, then more unmeasured ones until at least "
        f"`BENCH_OPAQUE_TOKENS`={OPAQUE_TOKENS:,} tokens were added.")
    out()
    out("| tokens/s (median) | p50 ms | p99 ms | runs (tokens/s) |")
    out("|---:|---:|---:|---|")
    out(f"| {rate:,.0f} | {ms(runs, 1):.2f} | {ms(runs, 2):.2f} | "
        f"{', '.join(f'{r[0]:,.0f}' for r in runs)} |")
    out()
    out(f"The {what} grew by {(bytes1 - bytes0) / 2**20:.1f} MiB over {rows1 - rows0:,} access "
        f"tokens added ({rows1:,} stored): **{per:.0f} bytes per opaque access token** (target "
        f"<= 512: {'PASS' if per <= 512 else 'MISS'}); the payload JSON averages "
        f"{payload:.0f} bytes of it.")
    out()


# ------------------------------------------------------------------------------ a million users

USERS = int(os.environ.get("BENCH_USERS", "1000000"))
FEW_USERS = int(os.environ.get("BENCH_USERS_FEW", "1000"))
CHUNK = 100_000
BULK = ("bulk", "bulk~")  # the range of the bulk usernames (digits sort before '~')
BULK_KEYS = ("login:account:bulk", "login:account:bulk~")  # credentials.rs account_key
BULK_USERS_SQL = """
WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?),
     b(id, username) AS (SELECT printf('bk%08x%012d', (i * 2654435761) % 4294967296, i),
                                'bulk' || i FROM n)
INSERT INTO users (id, username, doc, updated_at, revision, email)
SELECT id, username, json_set(?, '$.id', id, '$.username', username), ?, ?, ? FROM b
"""
BULK_COUNTERS_SQL = """
WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO failure_counters (id, failures, window_start, expires_at)
SELECT 'login:account:bulk' || i, 1, ?, ? FROM n
"""


def writer(db):
    """A second writer of the node's SQLite file (WAL): waits for the node's writes, if long."""
    c = sqlite3.connect(db, timeout=120, isolation_level=None)
    c.execute("PRAGMA busy_timeout = 120000")
    c.execute("PRAGMA cache_size = -262144")
    return c


def bulk_users(db, total):
    """Brings the store to `total` users: user0..user{WORKERS-1} and bulk0..bulk{total-WORKERS-1},
    copies of user0's row (so with its password), each with one failed sign-in counted in the
    last hour (its account's failure counter, expiring in an hour). With fewer than there are,
    every bulk user goes and the wanted ones come back. SQL straight into the running node's
    file, CHUNK users a transaction."""
    want = total - WORKERS
    c = writer(db)
    try:
        have = c.execute("SELECT count(*) FROM users WHERE username >= ? AND username < ?",
                         BULK).fetchone()[0]
        if have > want:
            for table, col, rng in (("users", "username", BULK),
                                    ("failure_counters", "id", BULK_KEYS)):
                while c.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
                                f"WHERE {col} >= ? AND {col} < ? LIMIT {CHUNK})", rng).rowcount:
                    pass
            have = 0
        row = c.execute("SELECT doc, updated_at, revision, email FROM users "
                        "WHERE username = 'user0'").fetchone()
        if row is None:
            raise SystemExit("no user0 to copy")
        now = int(time.time())
        for lo in range(have, want, CHUNK):
            hi = min(lo + CHUNK, want) - 1
            c.execute("BEGIN IMMEDIATE")
            c.execute(BULK_USERS_SQL, (lo, hi, *row))
            c.execute(BULK_COUNTERS_SQL, (lo, hi, now, now + 3600))
            c.execute("COMMIT")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as e:
        raise SystemExit(f"filling the users failed: {e}")
    finally:
        c.close()


def check_bulk_user(node, app, db, n):
    """The server finds bulk user `n` (CLI `user show`, then a sign-in through the login page with
    user0's password) and reads its failure counter: a sign-in clears an account's counter only
    when it found failures in it."""
    name, key = f"bulk{n}", f"login:account:bulk{n}"
    shown = node.cli("user", "show", name)
    if not shown or shown.get("username") != name:
        raise SystemExit(f"tessera user show {name}: {shown}")
    counter = "SELECT count(*) FROM failure_counters WHERE id = ?"
    before = query(db, counter, key)
    sign_in(node.base, *app, name)
    after = query(db, counter, key)
    if (before, after) != (1, 0):
        raise SystemExit(f"{name}'s failure counter: {before} before its sign-in, {after} after "
                         f"(expected 1, then 0: cleared by the server)")
    log(f"{name} found: id {shown['id']}, signed in, its failure counter read and cleared")


def census(db):
    users = query(db, "SELECT count(*) FROM users")
    counters = query(db, "SELECT count(*) FROM failure_counters")
    pages = query(db, "SELECT (SELECT page_count FROM pragma_page_count) - "
                      "(SELECT freelist_count FROM pragma_freelist_count)")
    page = query(db, "SELECT page_size FROM pragma_page_size")
    size = sum(os.path.getsize(db + x) for x in ("", "-wal") if os.path.exists(db + x))
    return users, counters, pages * page, size


def part_users(workdir):
    """Sign-ins with FEW_USERS users in the store, then USERS, alternating (the store grown and
    shrunk between runs) on one fresh node."""
    node = Node(os.path.join(workdir, "users"), {})
    try:
        app = web_app(node)
        db = db_path(node.dir)
        sign_ins(node.base, *app, 2, [])  # warm-up
        runs = {FEW_USERS: [], USERS: []}
        checked = False
        for _ in range(REPEAT):
            for total in (FEW_USERS, USERS):
                started = time.monotonic()
                bulk_users(db, total)
                log(f"{total:,} users in the store ({time.monotonic() - started:.1f} s to fill)")
                if total == USERS and not checked:
                    check_bulk_user(node, app, db, (total - WORKERS) // 2 + 1)
                    checked = True
                runs[total].append((*census(db), sign_ins(node.base, *app, SECONDS, [])))
    finally:
        node.stop()
        discard(node.dir)
    few, many = (statistics.median(r[-1] for r in runs[t]) for t in (FEW_USERS, USERS))
    ratio = many / few
    out(f"## Sign-ins with {USERS:,} users vs {FEW_USERS:,}")
    out()
    out(f"{WORKERS} concurrent browsers (`examples/sign_ins`) signing in as user0..user"
        f"{WORKERS - 1} through the real pages (as in the sign-in part), on a fresh node whose "
        f"store holds {FEW_USERS:,} or {USERS:,} users: the others are copies of user0's row "
        f"(bulk0, bulk1, ...) written with SQL into the node's SQLite file, each with one failed "
        f"sign-in counted in the last hour (a `failure_counters` row per account, unexpired), so "
        f"the user lookup and the throttle's counter reads both run against large tables. "
        f"Alternating: {FEW_USERS:,}, grown to {USERS:,}, shrunk back ...; {REPEAT} runs of "
        f"{SECONDS:g} s each, medians. Before the first {USERS:,}-user run a bulk user was found "
        f"by `tessera user show`, signed in through the login page, and its failure counter read "
        f"(and cleared) by the server.")
    out()
    out("| users in the store | failure counters | database MiB in use (file + WAL) | sign-ins/s |")
    out("|---:|---:|---:|---:|")
    for i in range(REPEAT):
        for t in (FEW_USERS, USERS):
            u, c, used, size, rate = runs[t][i]
            out(f"| {u:,} | {c:,} | {used / 2**20:.1f} ({size / 2**20:.0f}) | {rate:.1f} |")
    out()
    out(f"Median sign-ins/s: {few:.1f} with {FEW_USERS:,} users, {many:.1f} with {USERS:,}; ratio "
        f"**{ratio:.3f}** (target: no slower, judged as median ratio >= 0.95 to allow for the "
        f"machine's noise: {'PASS' if ratio >= 0.95 else 'MISS'}); each {USERS:,}-user run "
        f"against the {FEW_USERS:,}-user run just before it: "
        f"{', '.join(f'{m[-1] / f[-1]:.2f}' for f, m in zip(runs[FEW_USERS], runs[USERS]))}.")
    out()


# ------------------------------------------------------------------------------ purge

PURGE_ROWS = int(os.environ.get("BENCH_PURGE_ROWS", "1000000"))
PURGE_RUN = int(os.environ.get("BENCH_PURGE_RUN_SECONDS", "1"))
WATCH_EVERY = 0.1
EXPIRED_SQL = "SELECT count(*) FROM artifacts WHERE expires_at < ?"  # as the purge selects them
ANY_EXPIRED_SQL = "SELECT EXISTS (SELECT 1 FROM artifacts WHERE expires_at < ?)"


def expired_left(db):
    return query(db, EXPIRED_SQL, int(time.time()))


def token_row(db):
    """The one access token's row (the columns expired_artifacts copies)."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = c.execute("SELECT kind, client_id, grant_id, user_id, revoked_at, consumed_at, "
                         "payload FROM artifacts WHERE kind = 'access_token'").fetchall()
    finally:
        c.close()
    if len(rows) != 1:
        raise SystemExit(f"expected one access token to copy, found {len(rows)}")
    return rows[0]


def expired_artifacts(db, token, rows):
    """`rows` copies of `token`'s row, made (keys: the 8-byte time prefix of secret.rs, then 32
    random bytes) from two days to one day ago and expired their lifetime later, in key order as
    real ones; written while the node is stopped (it gave its purge lease back when it stopped,
    so the restarted node purges at once)."""
    kind, client, grant, user, revoked, consumed, payload = token
    claims = json.loads(payload)
    ttl = claims["exp"] - claims["iat"]
    first = int(time.time() * 1000) - 2 * 86_400_000

    def row(i):
        made = first + i * 86_400_000 // rows
        key = ((made << 16) | (i & 0xFFFF)).to_bytes(8, "big") + random.randbytes(32)
        return key, kind, client, grant, user, made // 1000 + ttl, revoked, consumed, payload

    c = writer(db)
    try:
        for lo in range(0, rows, CHUNK):
            c.execute("BEGIN IMMEDIATE")
            c.executemany("INSERT INTO artifacts (id, kind, client_id, grant_id, user_id, "
                          "expires_at, revoked_at, consumed_at, payload) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (row(i) for i in range(lo, min(lo + CHUNK, rows))))
            c.execute("COMMIT")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as e:
        raise SystemExit(f"writing the expired artifacts failed: {e}")
    finally:
        c.close()


class PurgeWatch(threading.Thread):
    """Looks every WATCH_EVERY s, on a read-only connection of its own, whether any expired
    artifact is left (an index seek: a count of a million takes 60 ms of a core); `done`: the
    monotonic time it first saw none."""

    def __init__(self, db):
        super().__init__(daemon=True)
        self.db, self.done, self.stopping = db, None, threading.Event()

    def run(self):
        c = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=60)
        try:
            while not self.stopping.is_set():
                if not c.execute(ANY_EXPIRED_SQL, (int(time.time()),)).fetchone()[0]:
                    self.done = time.monotonic()
                    return
                self.stopping.wait(WATCH_EVERY)
        finally:
            c.close()


def purge_runs(db, url, env):
    """wrk runs of PURGE_RUN s while the purge is under way: (left at start, left at end, req/s,
    p50, p99, counted); a run counts if rows went during it and some were still left at its end.
    Stops at the run the purge finished in."""
    runs = []
    while True:
        left0 = expired_left(db)
        r = wrk(url, "post.lua", env, PURGE_RUN)
        left1 = expired_left(db)
        runs.append((left0, left1, *r, 0 < left1 < left0))
        log(f"purge run: {left0:,} -> {left1:,} expired rows left, p99 {r[2] / 1000:.1f} ms")
        if left1 == 0:
            return runs
        if left1 >= left0:
            raise SystemExit(f"the purge made no progress during a {PURGE_RUN} s run "
                             f"({left1:,} expired rows left)")


def purge_cycle(workdir, port, env, auth, token):
    """With the node stopped, PURGE_ROWS expired artifacts written; the node started again (its
    purge begins at once) and loaded while it purges, then as many runs once it is over. Returns
    the runs during the purge (all), the idle runs, the seconds from the node's start to no expired
    row left, and the rows the node's log says it deleted."""
    db, started = db_path(workdir), time.monotonic()
    expired_artifacts(db, token, PURGE_ROWS)
    log(f"{PURGE_ROWS:,} expired artifacts written in {time.monotonic() - started:.1f} s; "
        f"starting the node (its purge begins at once)")
    watch = PurgeWatch(db)
    watch.start()
    begun = time.monotonic()
    node = Node(workdir, env, port=port)
    url, wenv = node.base + "/token", opaque_env(auth)
    try:
        wrk(url, "post.lua", wenv, 1)  # warm-up, the purge under way
        if expired_left(db) >= PURGE_ROWS:
            raise SystemExit("the purge did not start with the node: " +
                             open(os.path.join(workdir, "serve.log")).read()[-1500:])
        during = purge_runs(db, url, wenv)
        counted = sum(1 for r in during if r[-1])
        if not counted:
            raise SystemExit(f"the purge of {PURGE_ROWS:,} rows was over before a whole "
                             f"{PURGE_RUN} s run: raise BENCH_PURGE_ROWS or lower "
                             f"BENCH_PURGE_RUN_SECONDS")
        watch.join(5)
        wrk(url, "post.lua", wenv, 1)  # warm-up, idle
        idle = [(0, 0, *wrk(url, "post.lua", wenv, PURGE_RUN), True) for _ in range(counted)]
    finally:
        watch.stopping.set()
        watch.join()
        node.stop()
    text = re.sub(r"\x1b\[[0-9;]*m", "", open(os.path.join(workdir, "serve.log")).read())
    deleted = sum(int(n) for n in re.findall(r"purged expired artifacts.*?deleted=(\d+)", text))
    return during, idle, (watch.done - begun if watch.done else None), deleted


def part_purge(workdir):
    """BENCH_REPEAT cycles on a fresh node: PURGE_ROWS expired artifacts purged (at the node's
    start) while wrk asks it for opaque tokens, against the same runs once the purge is over."""
    env = {"RUST_LOG": "warn,tessera_server::jobs=debug"}  # a line when a purge pass ends
    node = Node(os.path.join(workdir, "purge"), env)
    try:
        auth = opaque_client(node)
        client_credentials_token(node.base, auth)
    finally:
        node.stop()
    token = token_row(db_path(node.dir))
    cycles = []
    try:
        for _ in range(REPEAT):
            cycles.append(purge_cycle(node.dir, node.port, env, auth, token))
    finally:
        discard(node.dir)
    counted = [r for c in cycles for r in c[0] if r[-1]]
    idle = [r for c in cycles for r in c[1]]
    busy, calm = ms(counted, 4), ms(idle, 4)
    ratio = busy / calm
    out(f"## Purging {PURGE_ROWS:,} expired artifacts while serving")
    out()
    out(f"A fresh node, stopped after one opaque token was issued; {PURGE_ROWS:,} copies of that "
        f"token's `artifacts` row written into its SQLite file, expired (keys time-ordered like "
        f"real ones); the node started again, and its purge (`jobs::purge`: statements sized to "
        f"hold the writer about 2 ms, a rest as long after each) begins at once. Meanwhile wrk "
        f"-c{CONNECTIONS} (`bench/post.lua`) asks for opaque client_credentials tokens (each an "
        f"insert) in runs of `BENCH_PURGE_RUN_SECONDS`={PURGE_RUN} s, after a 1 s warm-up; a run "
        f"counts if rows were purged during it and some were still left at its end. Then as many "
        f"runs once the purge is over (after a 1 s warm-up). The expired rows are counted at "
        f"each run's start and end; a thread looks every {WATCH_EVERY:g} s (read-only "
        f"connection) whether any is left. {REPEAT} such cycles (node stopped, rows written, "
        f"node started), so that each cycle's idle runs come right after its purge runs.")
    out()
    out("| cycle | run | expired rows left (start → end) | req/s | p50 ms | p99 ms |")
    out("|---:|---|---|---:|---:|---:|")
    for n, (during, calm_runs, _, _) in enumerate(cycles, 1):
        for i, r in enumerate(during, 1):
            what = f"purge {i}" if r[-1] else f"purge {i} (over within it: not counted)"
            out(f"| {n} | {what} | {r[0]:,} → {r[1]:,} | {r[2]:,.0f} | {r[3] / 1000:.2f} | "
                f"{r[4] / 1000:.2f} |")
        for i, r in enumerate(calm_runs, 1):
            out(f"| {n} | idle {i} | 0 | {r[2]:,.0f} | {r[3] / 1000:.2f} | {r[4] / 1000:.2f} |")
    out()
    out(f"Median p99 during the purge {busy:.2f} ms ({len(counted)} runs, median "
        f"{statistics.median(r[2] for r in counted):,.0f} req/s) vs idle {calm:.2f} ms "
        f"({statistics.median(r[2] for r in idle):,.0f} req/s): ratio **{ratio:.2f}** (target "
        f"< 2: {'PASS' if ratio < 2 else 'MISS'}). The purge of {PURGE_ROWS:,} rows took "
        f"{', '.join(f'{c[2]:.1f}' if c[2] is not None else '?' for c in cycles)} s from the "
        f"node's start (under the load above); rows deleted by the node's log: "
        f"{', '.join(f'{c[3]:,}' for c in cycles)}.")
    out()


# ------------------------------------------------------------------------------ two nodes

def part_cluster(workdir):
    pg = subprocess.run([os.path.join(ROOT, "scripts", "pg-throwaway.sh")], capture_output=True,
                        text=True, check=True).stdout
    env = dict(re.findall(r"export (\w+)=['\"]?([^'\"\n]*)", pg))
    url, pgdir = env["TEST_DATABASE_URL"], env["PG_THROWAWAY_DIR"]
    master = base64.b64encode(os.urandom(32)).decode()
    common = {"TESSERA_DATABASE_URL": url, "TESSERA_MASTER_KEY": master,
              "TESSERA_ISSUER": "http://127.0.0.1:1"}
    a = b = None
    try:
        a = Node(os.path.join(workdir, "node-a"), common)
        b = Node(os.path.join(workdir, "node-b"), common)
        auth = opaque_client(a)
        token = client_credentials_token(a.base, auth)
        rows = {"opaque": (CLIENT_CREDENTIALS, "access_token"),
                "introspection": (f"token={token}", "active.:true")}
        results = {}
        for row, (body, expect) in rows.items():
            env_ = {"BENCH_BODY": body, "BENCH_AUTH": auth, "BENCH_EXPECT": expect}
            one, two = [], []
            wrk(a.base + ("/token" if row == "opaque" else "/introspect"), "post.lua", env_, 2)
            for _ in range(REPEAT):
                path = "/token" if row == "opaque" else "/introspect"
                one.append(wrk(a.base + path, "post.lua", env_, SECONDS)[0])
                pair, errors = [], []

                def load(n):
                    try:
                        pair.append(wrk(n.base + path, "post.lua", env_, SECONDS,
                                        CONNECTIONS // 2)[0])
                    except BaseException as e:  # noqa: BLE001 - re-raised below
                        errors.append(e)
                ts = [threading.Thread(target=load, args=(n,)) for n in (a, b)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                if errors:
                    raise SystemExit(f"two-node run failed: {errors[0]}")
                two.append(sum(pair))
            results[row] = (one, two)
        out("## Two nodes vs one node on one PostgreSQL")
        out()
        out(f"Same database, same client; one node loaded with wrk -c{CONNECTIONS}, or both "
            f"nodes at once with wrk -c{CONNECTIONS // 2} each (summed); alternating, "
            f"{REPEAT} runs of {SECONDS:g} s, medians. PostgreSQL, both nodes and wrk share "
            f"this machine's cores.")
        out()
        out("| row | one node req/s | two nodes req/s | ratio | runs (one / two) |")
        out("|---|---:|---:|---:|---|")
        for row, (one, two) in results.items():
            m1, m2 = statistics.median(one), statistics.median(two)
            out(f"| {row} | {m1:,.0f} | {m2:,.0f} | {m2 / m1:.2f} | "
                f"{', '.join(f'{x:,.0f}' for x in one)} / {', '.join(f'{x:,.0f}' for x in two)} |")
        out()
    finally:
        for n in (a, b):
            if n:
                n.stop()
        subprocess.run([os.path.join(ROOT, "scripts", "pg-throwaway.sh"), "stop", pgdir],
                       capture_output=True)


def main():
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required (apt-get install wrk)")
    unknown = set(PARTS) - set(ALL_PARTS)
    if unknown:
        raise SystemExit(f"unknown BENCH_PARTS {', '.join(sorted(unknown))}; "
                         f"the parts are {','.join(ALL_PARTS)}")
    if os.environ.get("BENCH_SKIP_BUILD") != "1" and not BINARIES_GIVEN:
        log("building tessera, the sign-in load generator and the argon2 rate example (release)")
        subprocess.run(["cargo", "build", "--release", "-p", "tessera-server", "--bin", "tessera",
                        "--example", "sign_ins"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "-p", "tessera-core", "--example",
                        "argon2_rate"], cwd=ROOT, check=True)
    for b in (TESSERA, SIGN_INS, ARGON2):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"{b} is missing: build it (see the docstring) or point "
                             f"TESSERA_BIN / SIGN_INS_BIN / ARGON2_BIN at it")
    out(f"# Tessera scale benchmark ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)")
    out()
    workdir = tempfile.mkdtemp(prefix="tessera-scale.")
    try:
        if {"signin", "totp", "refresh", "million"} & set(PARTS):
            node = Node(workdir, {})
            try:
                app = web_app(node)
                tokens = []
                if "signin" in PARTS:
                    part_signin(node, app, tokens)
                if "totp" in PARTS:
                    part_signin_totp(node, app, workdir)
                while len(tokens) < (REPEAT + 6) * CONNECTIONS:  # each wrk run strands up to -c
                    tokens.append(sign_in(node.base, *app, "user0"))
                if "refresh" in PARTS or "million" in PARTS:
                    tokens_file, rate = part_refresh(node, app, tokens, workdir)
                    if "million" in PARTS:
                        part_million(node, app, tokens_file, rate, workdir)
            finally:
                node.stop()
        if "opaque" in PARTS:
            part_opaque(workdir)
        if "users" in PARTS:
            part_users(workdir)
        if "purge" in PARTS:
            part_purge(workdir)
        if "cluster" in PARTS:
            part_cluster(workdir)
    finally:
        discard(workdir)
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    with open(os.path.join(BENCH, "results", "scale.md"), "w") as f:
        f.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()

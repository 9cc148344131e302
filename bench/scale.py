#!/usr/bin/env python3
"""Tessera's scale benchmark: sign-ins against the raw argon2 rate, refresh-token grants, memory
and database bytes with a million stored refresh tokens, and two nodes against one on PostgreSQL.

    bench/scale.py                      # everything (needs wrk; PostgreSQL binaries for 'cluster')
    BENCH_PARTS=signin,refresh bench/scale.py

Knobs (environment): BENCH_PARTS (signin,totp,refresh,million,cluster), BENCH_REPEAT (3),
BENCH_SECONDS (10, each measured run), BENCH_CONNECTIONS (32, wrk -c), BENCH_SIGNIN_WORKERS (4),
BENCH_TOKENS (1000000, refresh tokens stored before the memory reading), BENCH_TOTP_USERS (300
users a browser in the password + TOTP run), BENCH_SKIP_BUILD (0).
Prints a markdown report and writes it to bench/results/scale.md. Standard library only.
"""

import base64
import html
import json
import os
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

PARTS = os.environ.get("BENCH_PARTS", "signin,totp,refresh,million,cluster").split(",")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
WORKERS = int(os.environ.get("BENCH_SIGNIN_WORKERS", "4"))
MILLION = int(os.environ.get("BENCH_TOKENS", "1000000"))
RP = "https://rp.example.com/cb"
PASSWORD = "correct horse battery"
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
TESSERA = os.path.join(TARGET, "release", "tessera")
ARGON2 = os.path.join(TARGET, "release", "examples", "argon2_rate")
SIGN_INS = os.path.join(TARGET, "release", "examples", "sign_ins")

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

    def __init__(self, workdir, env):
        self.dir, self.port = workdir, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, **{"RUST_LOG": "warn", **env})
        self.env.setdefault("TESSERA_ISSUER", self.base)
        self.env["TESSERA_LISTEN"] = f"127.0.0.1:{self.port}"
        os.makedirs(workdir, exist_ok=True)
        self.log = open(os.path.join(workdir, "serve.log"), "w")
        self.proc = subprocess.Popen([TESSERA, "serve"], cwd=workdir, env=self.env,
                                     stdout=self.log, stderr=self.log)
        for _ in range(300):
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
        self.proc.wait(timeout=30)


def status(base, method, path, body=None, headers=None):
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    return c.getresponse().status


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
    out(f"Ratio sign-ins / raw argon2id: **{s / a:.2f}** (target >= 0.8: "
        f"{'PASS' if s / a >= 0.8 else 'MISS'}); run by run: "
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


def refresh_tokens_stored(db):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return c.execute("SELECT count(*) FROM artifacts WHERE kind = 'refresh_token'") \
            .fetchone()[0]
    finally:
        c.close()


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
        a.cli("api", "create", "--identifier", "https://api.example.com", "--scope", "read:things")
        c = a.cli("client", "create", "--type", "m2m", "--name", "bench-opaque",
                  "--api", "https://api.example.com", "--scope", "read:things",
                  "--token-format", "opaque", "--introspection", "true")
        time.sleep(1.5)
        auth = basic(c["client_id"], c["client_secret"])
        cc = "grant_type=client_credentials&scope=read:things"
        u = urllib.parse.urlsplit(a.base)
        conn = http.client.HTTPConnection(u.hostname, u.port)
        conn.request("POST", "/token", cc, {"Authorization": auth,
                                            "Content-Type": "application/x-www-form-urlencoded"})
        token = json.loads(conn.getresponse().read())["access_token"]
        rows = {"opaque": (cc, "access_token"), "introspection": (f"token={token}", "active.:true")}
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
    if os.environ.get("BENCH_SKIP_BUILD") != "1":
        log("building tessera, the sign-in load generator and the argon2 rate example (release)")
        subprocess.run(["cargo", "build", "--release", "-p", "tessera-server", "--bin", "tessera",
                        "--example", "sign_ins"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "-p", "tessera-core", "--example",
                        "argon2_rate"], cwd=ROOT, check=True)
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
        if "cluster" in PARTS:
            part_cluster(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    with open(os.path.join(BENCH, "results", "scale.md"), "w") as f:
        f.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()

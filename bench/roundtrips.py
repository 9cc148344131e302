#!/usr/bin/env python3
"""Database round trips per request on PostgreSQL, and the rows and bytes each grant stores.

    bench/roundtrips.py
    BENCH_REQUESTS=500 TESSERA_BIN=/tmp/tessera bench/roundtrips.py

Starts a throwaway PostgreSQL (scripts/pg-throwaway.sh, with pg_stat_statements preloaded) and
one `tessera serve` on it, whose connections pass through a small counting proxy. For each kind
of request it sends a few warm-up requests, resets pg_stat_statements, sends BENCH_REQUESTS
requests one after another on one kept-alive HTTP connection, and reports:

- statements per request, from pg_stat_statements, broken down by statement;
- protocol round trips per request, from the proxy: every Sync (extended protocol) and Query
  (simple protocol) message Tessera sends waits for an answer, including the bare Syncs with
  which sqlx's pool tests a connection when it hands it out and when it is given back (no
  statement, so pg_stat_statements does not see them);
- artifacts rows added per request.

Background jobs share the database: the configuration version poll (every 250 ms), the purge and
its lease (every 60 s), the usage counts (every 5 s while there are any). An idle window of
BENCH_IDLE_SECONDS before the measurements finds their statements; those, and the statements of
the usage flush and the purge when they run during a measurement, are reported apart and left
out of the per-request figures.

Then rows and bytes per stored grant: count(*) and the size of the artifacts table (heap,
indexes, TOAST) before and after BENCH_GROWTH opaque client_credentials tokens and as many
refresh-token grants, sent by BENCH_THREADS connections at once (PostgreSQL grows by 8 KiB
pages, so a few thousand grants are needed for a per-grant figure).

Knobs (environment): BENCH_REQUESTS (200), BENCH_WARMUP (5), BENCH_IDLE_SECONDS (10),
BENCH_GROWTH (3000), BENCH_THREADS (8), TESSERA_BIN (target/release/tessera, not built here).
Prints a markdown report and writes it to bench/results/roundtrips.md. Exits non-zero on any
unexpected answer. Authorization codes live 60 s and the code-exchange row spends codes made by
the row before it, so keep BENCH_REQUESTS to what the sign-ins make in well under a minute.
Standard library only; needs PostgreSQL's binaries (pg-throwaway.sh installs Debian's postgresql
when missing) and runs initdb as the postgres user when run as root.
"""

import base64
import collections
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The bench directory is put on the path first; scale.py owns the node, browser and helpers.
from scale import TESSERA, Browser, Node, basic, hidden  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
PG_THROWAWAY = os.path.join(ROOT, "scripts", "pg-throwaway.sh")

N = int(os.environ.get("BENCH_REQUESTS", "200"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "5"))
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "10"))
GROWTH = int(os.environ.get("BENCH_GROWTH", "3000"))
THREADS = int(os.environ.get("BENCH_THREADS", "8"))

API = "https://api.example.com"
SCOPE = "read:things"
RP = "https://rp.example.com/cb"
USER, PASSWORD = "alice", "correct horse battery"
DB = "tessera"  # Tessera's database; the script's own queries run in "postgres"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

report = []


def log(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


def out(line=""):
    print(line, flush=True)
    report.append(line)


def fail(msg):
    raise SystemExit(f"roundtrips.py: {msg}")


# ------------------------------------------------------------------------------ PostgreSQL

class Postgres:
    """A throwaway cluster from scripts/pg-throwaway.sh with pg_stat_statements loaded; `sql`
    runs psql in the `postgres` database (or `db`) and returns rows of text fields."""

    def __init__(self):
        opts = "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=1000"
        r = subprocess.run([PG_THROWAWAY], capture_output=True, text=True,
                           env=dict(os.environ, PG_THROWAWAY_OPTS=opts))
        if r.returncode != 0:
            fail(f"scripts/pg-throwaway.sh failed: {r.stderr[-2000:]}")
        env = dict(re.findall(r"export (\w+)=['\"]?([^'\"\n]*)", r.stdout))
        self.dir = env["PG_THROWAWAY_DIR"]
        self.port = urllib.parse.urlsplit(env["TEST_DATABASE_URL"]).port
        with open(os.path.join(self.dir, "bin")) as f:
            self.psql = os.path.join(f.read().strip(), "psql")
        self.texts = {}  # queryid: shortened text
        try:
            self.sql("CREATE EXTENSION pg_stat_statements")
            self.sql(f"CREATE DATABASE {DB}")
        except BaseException:
            self.stop()
            raise

    def url(self, port=None):
        return f"postgres://tessera@127.0.0.1:{port or self.port}/{DB}"

    def sql(self, query, db="postgres"):
        r = subprocess.run([self.psql, "-X", "-q", "-A", "-t", "-F", "\t", "-h", "127.0.0.1",
                            "-p", str(self.port), "-U", "tessera", "-d", db,
                            "-v", "ON_ERROR_STOP=1", "-c", query],
                           capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"psql {query!r}: {r.stderr.strip()}")
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def reset_statements(self):
        self.sql("SELECT pg_stat_statements_reset()")

    def statements(self):
        """{queryid: calls} of Tessera's database since the last reset. The text of a statement
        is kept in `texts`: after a reset, a statement a connection had prepared before is
        recorded with its constants as written, one prepared since with them as $n, so the
        queryid, not the text, tells statements apart."""
        rows = self.sql("SELECT queryid, query, calls FROM pg_stat_statements "
                        f"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{DB}')")
        calls = collections.Counter()
        for qid, query, n in rows:
            calls[qid] += int(n)
            if qid not in self.texts or "$" in query:
                self.texts[qid] = shorten(query)
        return calls

    def artifacts(self):
        """(rows, heap bytes, index bytes, total bytes) of the artifacts table."""
        (row,) = self.sql("SELECT count(*), pg_relation_size('artifacts'), "
                          "pg_indexes_size('artifacts'), pg_total_relation_size('artifacts') "
                          "FROM artifacts", db=DB)
        return tuple(int(x) for x in row)

    def stop(self):
        subprocess.run([PG_THROWAWAY, "stop", self.dir], capture_output=True)


def shorten(query):
    """One line; long column lists and value lists shown as …; at most 110 characters."""
    q = " ".join(query.split())
    q = re.sub(r"SELECT (?!.*\bSELECT\b)(.{50,}?) FROM", "SELECT … FROM", q)
    q = re.sub(r"\(([^()]{40,})\)", "(…)", q)
    q = re.sub(r"(VALUES \(…\))(,\(…\))+", r"\1,…", q)
    return q if len(q) <= 110 else q[:107] + "…"


# ------------------------------------------------------------------------------ wire counter

class WireCounter:
    """A TCP proxy in front of PostgreSQL counting the frontend messages after which the client
    waits for the server: Sync ('S', extended protocol) and Query ('Q', simple protocol). A Sync
    with nothing before it since the last one is counted as a ping (sqlx tests an idle pooled
    connection that way before handing it out)."""

    SPECIAL = (80877103, 80877104, 80877102)  # SSLRequest, GSSENCRequest, CancelRequest

    def __init__(self, target_port):
        self.target = target_port
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return collections.Counter(self.counts)

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._frontend(client, upstream)

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _frontend(self, client, upstream):
        buf, started, since_sync = bytearray(), False, 0
        try:
            while data := client.recv(65536):
                upstream.sendall(data)
                buf += data
                while True:
                    if not started:  # untyped start-up packets: length, code
                        if len(buf) < 8 or len(buf) < int.from_bytes(buf[0:4], "big"):
                            break
                        n, code = int.from_bytes(buf[0:4], "big"), int.from_bytes(buf[4:8], "big")
                        del buf[:n]
                        started = code not in self.SPECIAL
                        continue
                    if len(buf) < 5 or len(buf) < 1 + int.from_bytes(buf[1:5], "big"):
                        break
                    kind = chr(buf[0])
                    del buf[:1 + int.from_bytes(buf[1:5], "big")]
                    with self.lock:
                        if kind == "S":
                            self.counts["ping" if since_sync == 0 else "sync"] += 1
                        elif kind == "Q":
                            self.counts["query"] += 1
                    since_sync = 0 if kind in "SQ" else since_sync + 1
        except OSError:
            pass
        self._pump(client, upstream)  # closes both


def round_trips(c):
    return c["sync"] + c["query"] + c["ping"]


# ------------------------------------------------------------------------------ Tessera

class HTTP(Browser):
    """One kept-alive connection with its own cookies (scale.py's browser), and a JSON POST."""

    def post_json(self, path, body, auth, what):
        st, _, data = self.send("POST", path, urllib.parse.urlencode(body),
                                dict(FORM, Authorization=auth))
        if st != 200:
            fail(f"{what} answered {st}: {data[:300]!r}")
        return json.loads(data)


def setup(node):
    """The API, two m2m clients (opaque, ES256 JWT), a web application and a user."""
    node.cli("api", "create", "--identifier", API, "--scope", SCOPE)
    m2m = {}
    for fmt, extra in (("opaque", []), ("jwt", ["--signing-alg", "ES256"])):
        c = node.cli("client", "create", "--type", "m2m", "--name", f"bench-{fmt}",
                     "--api", API, "--scope", SCOPE, "--token-format", fmt,
                     "--introspection", "true", *extra)
        m2m[fmt] = basic(c["client_id"], c["client_secret"])
    node.cli("user", "create", "--username", USER, env={"TESSERA_NEW_PASSWORD": PASSWORD})
    c = node.cli("client", "create", "--type", "web", "--name", "Bench web",
                 "--redirect-uri", RP, "--consent", "auto-accept",
                 "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                 "--signing-alg", "ES256", "--id-token-alg", "ES256")
    time.sleep(1.5)  # a node picks up CLI changes within a second
    return m2m, (c["client_id"], basic(c["client_id"], c["client_secret"]))


# ------------------------------------------------------------------------------ requests

def sign_in_code(base, client_id):
    """GET /authorize and POST /login as a fresh browser: (code, PKCE verifier)."""
    b = HTTP(base)
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": RP,
        "scope": "openid offline_access", "state": "s", "nonce": "n",
        "code_challenge": challenge, "code_challenge_method": "S256", "prompt": "consent"})
    st, _, page = b.send("GET", f"/authorize?{q}")
    if st != 200:
        fail(f"GET /authorize answered {st}: {page[:300]!r}")
    page = page.decode()
    form = urllib.parse.urlencode({
        "interaction": hidden(page, "interaction"), "csrf": hidden(page, "csrf"),
        "username": USER, "password": PASSWORD})
    st, h, data = b.send("POST", "/login", form, FORM)
    if st != 303:
        fail(f"POST /login answered {st}: {data[:300]!r}")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(h["location"]).query)
    if "code" not in query:
        fail(f"POST /login redirected without a code: {h['location']}")
    b.conn.close()
    return query["code"][0], verifier


def exchange(http_, auth, code, verifier):
    """POST /token with the code and PKCE verifier: the refresh token."""
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": RP,
            "code_verifier": verifier}
    return http_.post_json("/token", body, auth, "code exchange")["refresh_token"]


class Kinds:
    """Each request kind as a function sending one request; state (a refresh token chain, codes
    signed in ahead) lives here."""

    def __init__(self, node, m2m, web):
        self.node, self.m2m, (self.web_id, self.web_auth) = node, m2m, web
        self.http = HTTP(node.base)
        self.refresh = None  # the one chain of refresh_grant
        self.spare = []  # refresh tokens of other grants, from sign_in
        self.codes = []
        self.tokens = []

    def client_credentials(self, fmt):
        body = {"grant_type": "client_credentials", "scope": SCOPE}
        return self.http.post_json("/token", body, self.m2m[fmt],
                                   f"client_credentials ({fmt})")["access_token"]

    def introspect(self, token, fmt="opaque"):
        """As the client the token was issued to."""
        r = self.http.post_json("/introspect", {"token": token}, self.m2m[fmt],
                                "introspection")
        if r.get("active") is not True:
            fail(f"introspection said {r}")

    def refresh_with(self, token):
        body = {"grant_type": "refresh_token", "refresh_token": token}
        return self.http.post_json("/token", body, self.web_auth,
                                   "refresh_token grant")["refresh_token"]

    def refresh_grant(self):
        self.refresh = self.refresh_with(self.refresh or self.sign_in())

    def sign_in(self):
        code, verifier = sign_in_code(self.node.base, self.web_id)
        token = exchange(self.http, self.web_auth, code, verifier)
        self.spare.append(token)
        return token

    def authorize_and_login(self):
        self.codes.append(sign_in_code(self.node.base, self.web_id))

    def code_exchange(self):
        exchange(self.http, self.web_auth, *self.codes.pop(0))


# ------------------------------------------------------------------------------ measuring

def periodic(q):
    """A statement of the jobs that run now and then rather than all the time: the usage-count
    flush (every 5 s while there are counts) and the purge (every 60 s, under its lease)."""
    return ("usage_counts" in q or "INTO leases" in q
            or re.match(r"DELETE FROM (artifacts|failure_counters|audit_events) WHERE id IN", q))


def measure(pg, wire, background, send, n=N, warmup=WARMUP, prepare=None):
    """Warm up, reset, send `n` requests; the statements and round trips they cost."""
    for _ in range(warmup):
        send()
    if prepare:
        prepare()
    rows0 = pg.artifacts()[0]
    pg.reset_statements()
    w0, t0 = wire.snapshot(), time.monotonic()
    for _ in range(n):
        send()
    seconds = time.monotonic() - t0
    w1 = wire.snapshot()
    calls = pg.statements()
    rows1 = pg.artifacts()[0]
    ours, jobs = collections.Counter(), collections.Counter()
    for qid, c in calls.items():
        q = pg.texts[qid]
        if qid in background.rates:
            continue  # the jobs of the idle window: their rate is reported apart
        (jobs if periodic(q) else ours)[q] += c
    flushes = sum(c for q, c in jobs.items() if q.startswith("DELETE FROM usage_counts"))
    # The usage-count flushes' own BEGIN and COMMIT.
    for q in ("BEGIN", "COMMIT"):
        moved = min(ours.get(q, 0), flushes)
        if moved:
            ours[q] -= moved
            jobs[q] += moved
    ours = +ours
    wire_delta = w1 - w0
    # The jobs' round trips: the idle rate, every periodic statement, and two pings (one when
    # the pool hands a connection out, one when it is given back) for each purge statement
    # (each on its own) and each usage flush (one transaction).
    purge = sum(c for q, c in jobs.items()
                if "usage_counts" not in q and q not in ("BEGIN", "COMMIT"))
    bg_pings = background.ping_rate * seconds + 2 * (purge + flushes)
    bg_wire = background.wire_rate * seconds + sum(jobs.values()) + 2 * (purge + flushes)
    return {
        "n": n, "seconds": seconds, "ours": ours, "jobs": jobs,
        "statements": sum(ours.values()) / n,
        "round_trips": max(0.0, round_trips(wire_delta) - bg_wire) / n,
        "pings": max(0.0, wire_delta["ping"] - bg_pings) / n,
        "rows": (rows1 - rows0) / n,
    }


class Background:
    """What the background jobs run while no request comes: statements per second by queryid, and
    round trips and pings per second on the wire."""

    def __init__(self, pg, wire, seconds):
        log(f"idle window of {seconds:g} s (background jobs only)")
        pg.reset_statements()
        w0 = wire.snapshot()
        time.sleep(seconds)
        w = wire.snapshot() - w0
        self.seconds = seconds
        self.rates = {qid: c / seconds for qid, c in pg.statements().items()}
        self.pg = pg
        self.wire_rate = round_trips(w) / seconds
        self.ping_rate = w["ping"] / seconds


def grow(pg, fn, starts, label):
    """`fn(start, m)` on one connection per start, `GROWTH` requests in all, at once: the
    requests made and the (rows, heap, index, total) deltas of the artifacts table."""
    log(f"{label}: {GROWTH} requests on {len(starts)} connections")
    shares = [GROWTH // len(starts) + (1 if i < GROWTH % len(starts) else 0)
              for i in range(len(starts))]
    before = pg.artifacts()
    with concurrent.futures.ThreadPoolExecutor(len(starts)) as pool:
        done = sum(pool.map(fn, starts, shares))
    time.sleep(1)  # the last batch committed, the table's statistics settled
    after = pg.artifacts()
    return done, tuple(a - b for a, b in zip(after, before)), after


# ------------------------------------------------------------------------------ report

def md(query):
    return query.replace("|", "\\|")


def report_requests(results, background):
    out("## Statements and round trips per request")
    out()
    out(f"{N} requests of each kind, one after another on one kept-alive connection, after "
        f"{WARMUP} warm-up requests (none where the kind uses things made ahead). "
        f"*Statements*: pg_stat_statements calls in Tessera's database / requests, the background "
        f"jobs' statements left out. *Round trips*: Sync and Query messages Tessera sent "
        f"(counting proxy) / requests, the background jobs' share subtracted. *Pings*: bare "
        f"Syncs, round trips without a statement: sqlx 0.8's pool tests a connection when it "
        f"hands out an idle one (`test_before_acquire`, on by default; on the request's path) "
        f"and when it is given back (always; in a spawned task, after the caller has its "
        f"answer). *Rows*: artifacts rows added / requests. *ms*: wall time per request through "
        f"the proxy, which adds latency of its own.")
    out()
    out("Per-node caches shape some rows: an opaque token or a grant read in the last 500 ms "
        "comes from the artifact cache (`one token again and again` and `one grant` read the "
        "store about twice a second, not per request); the `a different ... each time` and "
        "`not cached` rows waited 600 ms first, so each request reads the store, as a request "
        "on another node, or later, does. A client's throttle state is read at most once a "
        "second per node.")
    out()
    out("| request | statements | round trips | of which pings | rows added | ms |")
    out("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        out(f"| {name} | {r['statements']:.2f} | {r['round_trips']:.2f} | {r['pings']:.2f} | "
            f"{r['rows']:.2f} | {1000 * r['seconds'] / r['n']:.2f} |")
    out()
    out("### By statement (calls per request)")
    out()
    for name, r in results.items():
        out(f"**{name}**")
        out()
        if not r["ours"]:
            out("No statement.")
            out()
            continue
        out("| calls/request | statement |")
        out("|---:|---|")
        for q, c in sorted(r["ours"].items(), key=lambda x: (-x[1], x[0])):
            out(f"| {c / r['n']:.2f} | `{md(q)}` |")
        out()
    out("## Background jobs (left out above)")
    out()
    out(f"Idle window of {background.seconds:g} s, no request: {background.wire_rate:.1f} round "
        f"trips/s on the wire, of which {background.ping_rate:.1f} pings/s.")
    out()
    out("| calls/s idle | statement |")
    out("|---:|---|")
    for qid, rate in sorted(background.rates.items(), key=lambda x: -x[1]):
        out(f"| {rate:.2f} | `{md(background.pg.texts[qid])}` |")
    out()
    jobs = collections.Counter()
    seconds = 0.0
    for r in results.values():
        seconds += r["seconds"]
        jobs.update(r["jobs"])
    if jobs:
        out(f"Periodic jobs that ran during the {seconds:.0f} s of measured requests (the "
            f"usage-count flush every 5 s while there are counts, one transaction; the purge "
            f"every 60 s):")
        out()
        out("| calls | statement |")
        out("|---:|---|")
        for q, c in sorted(jobs.items(), key=lambda x: -x[1]):
            out(f"| {c} | `{md(q)}` |")
        out()


def report_growth(rows):
    out("## Rows and bytes per stored grant")
    out()
    out(f"`artifacts` before and after {GROWTH} requests of each kind on {THREADS} connections "
        f"at once (so that concurrent artifact inserts are group-committed as they are under "
        f"load). Bytes: growth of the table (heap), its indexes and its total "
        f"(`pg_total_relation_size`, with TOAST) / requests. PostgreSQL grows by 8 KiB pages and "
        f"autovacuum may run meanwhile, so these are averages, not exact row sizes.")
    out()
    out("| grants | rows added per grant | heap B/grant | index B/grant | total B/grant | "
        "table after (rows, total MiB) |")
    out("|---|---:|---:|---:|---:|---:|")
    for name, (n, (dr, dh, di, dt), after) in rows.items():
        out(f"| {name} | {dr / n:.2f} | {dh / n:,.0f} | {di / n:,.0f} | {dt / n:,.0f} | "
            f"{after[0]:,}, {after[3] / 2**20:.1f} |")
    out()


# ------------------------------------------------------------------------------ main

def measure_requests(pg, wire, k):
    """Every request kind, one after another: {name: measurement}."""
    background = Background(pg, wire, IDLE_SECONDS)
    results = {}

    def kind(name, send, **kw):
        log(f"{name}: {N} requests")
        results[name] = measure(pg, wire, background, send, **kw)

    kind("client_credentials, opaque token", lambda: k.client_credentials("opaque"))
    kind("client_credentials, ES256 JWT", lambda: k.client_credentials("jwt"))
    token = k.client_credentials("opaque")
    kind("introspection, one token again and again", lambda: k.introspect(token))

    def stale():
        time.sleep(0.6)  # past the artifact cache's freshness (500 ms)

    def fresh_tokens():
        k.tokens = [k.client_credentials("opaque") for _ in range(N)]
        stale()
    kind("introspection, a different token each time", lambda: k.introspect(k.tokens.pop()),
         warmup=0, prepare=fresh_tokens)
    jwt = k.client_credentials("jwt")
    kind("introspection of an ES256 JWT", lambda: k.introspect(jwt, "jwt"))
    kind("refresh_token grant, one grant (its record cached)", k.refresh_grant)
    kind("whole sign-in (authorize, login, code exchange)", k.sign_in, warmup=2)
    kind("refresh_token grant, a different grant each time", lambda: k.refresh_with(k.spare.pop()),
         warmup=0, prepare=stale)
    # The code exchange alone: codes made ahead (they live 60 s), then exchanged.
    kind("GET /authorize + POST /login (to the code)", k.authorize_and_login, warmup=0)
    kind("code exchange alone, grant not cached", k.code_exchange, warmup=0, prepare=stale)
    return results, background


def measure_growth(pg, k):
    """Opaque tokens and refresh grants from THREADS connections at once: {name: growth}."""
    def tokens(_, m):
        h = HTTP(k.node.base)
        for _ in range(m):
            h.post_json("/token", {"grant_type": "client_credentials", "scope": SCOPE},
                        k.m2m["opaque"], "client_credentials (opaque)")
        return m

    def refreshes(rt, m):
        h = HTTP(k.node.base)
        for _ in range(m):
            rt = h.post_json("/token", {"grant_type": "refresh_token", "refresh_token": rt},
                             k.web_auth, "refresh_token grant")["refresh_token"]
        return m

    growth = {"client_credentials, opaque token":
              grow(pg, tokens, [None] * THREADS, "opaque tokens")}
    chains = [k.sign_in() for _ in range(THREADS)]  # before the first reading
    growth["refresh_token grant (rotation)"] = grow(pg, refreshes, chains, "refresh grants")
    return growth


def report_kinds(pg):
    rows = pg.sql("SELECT kind, count(*), round(avg(pg_column_size(a.*))), "
                  "round(avg(length(payload))) FROM artifacts a GROUP BY kind ORDER BY 2 DESC",
                  db=DB)
    out("Rows by kind at the end of the run (everything above; `row B` is the average "
        "`pg_column_size` of a whole row, `payload chars` the average length of its JSON "
        "payload):")
    out()
    out("| kind | rows | row B | payload chars |")
    out("|---|---:|---:|---:|")
    for kind, count, size, payload in rows:
        out(f"| {kind} | {int(count):,} | {size} | {payload} |")
    out()


def run(pg, workdir):
    wire = WireCounter(pg.port)
    master = base64.b64encode(os.urandom(32)).decode()
    node = Node(os.path.join(workdir, "node"),
                {"TESSERA_DATABASE_URL": pg.url(wire.port), "TESSERA_MASTER_KEY": master})
    try:
        k = Kinds(node, *setup(node))
        report_requests(*measure_requests(pg, wire, k))
        report_growth(measure_growth(pg, k))
        report_kinds(pg)
    finally:
        node.stop()
        wire.listener.close()


def main():
    if not os.access(TESSERA, os.X_OK):
        fail(f"no tessera binary at {TESSERA}: build it (cargo build --release -p "
             f"tessera-server --bin tessera) or set TESSERA_BIN")
    out(f"# Tessera database round trips ({time.strftime('%Y-%m-%d')}, PostgreSQL, "
        f"{os.cpu_count()} cores)")
    out()
    log("starting a throwaway PostgreSQL with pg_stat_statements")
    pg = Postgres()
    workdir = tempfile.mkdtemp(prefix="tessera-roundtrips.")
    try:
        (version,) = pg.sql("SHOW server_version")[0]
        binary = (os.path.relpath(TESSERA, ROOT) if TESSERA.startswith(ROOT)
                  else os.path.basename(TESSERA))
        out(f"PostgreSQL {version} (fsync off), one `tessera serve` node ({binary}), its "
            f"connections through a counting proxy.")
        out()
        run(pg, workdir)
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    with open(os.path.join(BENCH, "results", "roundtrips.md"), "w") as f:
        f.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Small helpers for bench/run.sh (stdlib only).

  benchlib.py free-port
  benchlib.py json-get KEY            < text  (first JSON object in text holding KEY, nested ok)
  benchlib.py urlencode VALUE
  benchlib.py random-secret           (a fresh client secret, for the bare signer)
  benchlib.py check-token ES256|RS256|opaque < token-response-json
  benchlib.py check-introspection     < introspection-response-json
  benchlib.py report RESULTS_TSV FAILURES_TSV   (env: BENCH_META_* ; markdown to stdout)
"""

import base64
import json
import os
import secrets
import socket
import statistics
import sys
import urllib.parse


def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def json_objects(text):
    dec = json.JSONDecoder()
    i = text.find("{")
    while i != -1:
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            yield obj
        i = text.find("{", end)


def find_key(obj, key):
    """Breadth-first search for key in nested dicts/lists (top level wins)."""
    queue = [obj]
    while queue:
        cur = queue.pop(0)
        if isinstance(cur, dict):
            if key in cur and isinstance(cur[key], (str, int)):
                return cur[key]
            queue.extend(cur.values())
        elif isinstance(cur, list):
            queue.extend(cur)
    return None


def json_get(key):
    text = sys.stdin.read()
    for obj in json_objects(text):
        val = find_key(obj, key)
        if val is not None:
            print(val)
            return
    die(f"no JSON object with key {key!r} in output:\n{text[:2000]}")


def b64url_json(part):
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    return json.loads(raw)


def jwt_header(token):
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = b64url_json(parts[0])
    except Exception:
        return None
    return header if isinstance(header, dict) and "alg" in header else None


def check_token(expected):
    text = sys.stdin.read()
    try:
        resp = json.loads(text)
    except ValueError:
        die(f"token response is not JSON: {text[:500]}")
    tok = resp.get("access_token")
    if not isinstance(tok, str) or not tok:
        die(f"no access_token in token response: {text[:500]}")
    dpop = expected.endswith("+DPoP")
    expected = expected.removesuffix("+DPoP")
    want_type = "dpop" if dpop else "bearer"
    if str(resp.get("token_type", "")).lower() != want_type:
        die(f"token_type is not {want_type}: {text[:500]}")
    header = jwt_header(tok)
    if expected == "opaque":
        if header is not None:
            die(f"expected an opaque access token, got a JWT with header {header}")
        desc = f"opaque token ({len(tok)} chars)"
    else:
        if header is None:
            die(f"expected a JWT access token ({expected}), got {tok[:60]}...")
        if header.get("alg") != expected:
            die(f"expected JWT alg {expected}, got header {header}")
        payload = b64url_json(tok.split(".")[1])
        if dpop and not (payload.get("cnf") or {}).get("jkt"):
            die(f"the DPoP-bound token has no cnf.jkt: {payload}")
        desc = f"JWT header {json.dumps(header)} aud={payload.get('aud')} scope={payload.get('scope')}"
    print(f"{desc}, scope={resp.get('scope')}, expires_in={resp.get('expires_in')}")


def check_introspection():
    text = sys.stdin.read()
    try:
        resp = json.loads(text)
    except ValueError:
        die(f"introspection response is not JSON: {text[:500]}")
    if resp.get("active") is not True:
        die(f"introspection says not active: {text[:500]}")
    print(f"active=true client_id={resp.get('client_id')} scope={resp.get('scope')} aud={resp.get('aud')}")


# --------------------------------------------------------------------------- report

ROWS = [
    # key, label, target req/s (Tessera), target ratio (Tessera / oidc-provider)
    ("es256", "client_credentials JWT ES256", 20000, 5.0),
    # Tessera only: the ratio column is to Tessera's own ES256 bearer row.
    ("dpop", "client_credentials JWT ES256, DPoP-bound", 5000, None),
    ("rs256", "client_credentials JWT RS256", 5000, 1.5),
    ("opaque", "client_credentials opaque", 12000, 5.0),
    ("introspection", "introspection", 25000, 5.0),
]
SIDES = ("tessera", "oidc-provider", "bare")
# The limit row: Tessera's es256 row against the bare signer (bench/bare_signer.rs), which
# does only what that request needs; target: Tessera req/s / bare signer req/s.
BARE_ROW = "es256"
BARE_TARGET = 0.8


def fmt_ms(us):
    if us is None:
        return "–"
    ms = us / 1000.0
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 100:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms"


def fmt_rps(v):
    return "–" if v is None else f"{v:,.0f}"


def limit_section(runs, failures, med):
    """The limit row: Tessera ES256 against the bare signer, medians of the same run."""
    row = BARE_ROW
    b = {k: med("bare", row, k) for k in ("rps", "p50_us", "p99_us")}
    t_rps = med("tessera", row, "rps")
    t_failed = ("tessera", row) in failures
    b_failed = ("bare", row) in failures

    def cell(failed, val, fmt):
        if failed:
            return "**FAILED**" if fmt is fmt_rps else "–"
        return fmt(val)

    ratio = t_rps / b["rps"] if t_rps and b["rps"] else None
    if t_failed or b_failed:
        verdict = "FAILED"
    else:
        verdict = "PASS" if ratio is not None and ratio >= BARE_TARGET else "MISS"
    out = [
        "## Limit row: Tessera vs the bare signer",
        "",
        "The bare signer (bench/bare_signer.rs) answers the same ES256 client_credentials request with the "
        "same token and JSON, and does nothing else (axum, SHA-256 secret check, ES256 signing; no store, "
        "configuration, logging, metrics, limits, request ids or timeouts): the limit on this machine. "
        "Ratio = Tessera ES256 median req/s / bare signer median req/s, runs alternating in the same invocation.",
        "",
        "| bare signer req/s | p50 | p99 | Tessera ES256 req/s | ratio | target |",
        "|---:|---:|---:|---:|---:|---|",
        f"| {cell(b_failed, b['rps'], fmt_rps)} | {cell(b_failed, b['p50_us'], fmt_ms)} "
        f"| {cell(b_failed, b['p99_us'], fmt_ms)} | {cell(t_failed, t_rps, fmt_rps)} "
        f"| {'–' if ratio is None else f'{ratio:.2f}'} | ≥ {BARE_TARGET:g}: {verdict} |",
        "",
    ]
    t_runs = {r["rep"]: r["rps"] for r in runs.get(("tessera", row), [])}
    b_runs = {r["rep"]: r["rps"] for r in runs.get(("bare", row), [])}
    pairs = [f"{t_runs[k] / b_runs[k]:.2f} (run {k})" for k in sorted(t_runs) if k in b_runs and b_runs[k]]
    if pairs:
        out += [f"Run by run (Tessera run k / bare run k): {', '.join(pairs)}", ""]
    return out


def report(results_path, failures_path):
    meta = {k[len("BENCH_META_"):].lower(): v for k, v in os.environ.items() if k.startswith("BENCH_META_")}
    runs = {}  # (side,row) -> list of dict
    if os.path.exists(results_path):
        with open(results_path) as f:
            for line in f:
                fields = line.split()
                if len(fields) < 4 or fields[0] != "RUN":
                    continue
                side, row, rep = fields[1], fields[2], int(fields[3])
                kv = dict(x.split("=", 1) for x in fields[4:] if "=" in x)
                d = {k: float(v) for k, v in kv.items()}
                d["rep"] = rep
                runs.setdefault((side, row), []).append(d)
    failures = {}
    if os.path.exists(failures_path):
        with open(failures_path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t", 2)
                if len(parts) == 3:
                    failures.setdefault((parts[0], parts[1]), parts[2])

    sides = meta.get("sides", "tessera oidc-provider").split()
    rows_sel = meta.get("rows", "es256 rs256 opaque introspection").split()

    def med(side, row, key):
        rs = runs.get((side, row))
        if not rs or (side, row) in failures:
            return None
        return statistics.median(r[key] for r in rs)

    out = []
    w = out.append
    w("# Tessera vs node-oidc-provider benchmark")
    w("")
    w(f"- date: {meta.get('date', '?')}")
    w(f"- machine: {meta.get('cpus', '?')} CPUs ({meta.get('cpu_model', '?')}), {meta.get('kernel', '?')}")
    w(f"- tessera: {meta.get('tessera_version', '–')}")
    w(f"- oidc-provider: {meta.get('oidc_version', '–')} on node {meta.get('node_version', '?')}, "
      "ONE node process (node is single-threaded: one event loop serves every request)")
    if "bare" in sides:
        w(f"- bare signer: {meta.get('bare_version', '?')}")
    w(f"- load generator: {meta.get('wrk_version', 'wrk')} on the same machine, from 127.0.0.1:")
    w(f"  `{meta.get('wrk_cmd', '?')}`")
    w(f"- each cell: median of {meta.get('repeat', '?')} runs of {meta.get('duration', '?')} "
      f"(each preceded by a {meta.get('warmup', '?')} warm-up; Tessera and oidc-provider runs of a row alternate"
      f"{'; in the es256 row the bare signer runs alternate with them' if 'bare' in sides else ''})")
    w("")
    w("| row | Tessera req/s | p50 | p99 | oidc-provider req/s | p50 | p99 | ratio | target req/s | target ratio |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    any_miss = False
    for key, label, t_rps, t_ratio in ROWS:
        if key not in rows_sel:
            continue
        t = {k: med("tessera", key, k) for k in ("rps", "p50_us", "p99_us")}
        o = {k: med("oidc-provider", key, k) for k in ("rps", "p50_us", "p99_us")}

        def cell(side, vals, k):
            if side not in sides or (t_ratio is None and side == "oidc-provider"):
                return "–"
            if (side, key) in failures:
                return "**FAILED**" if k == "rps" else "–"
            if k == "rps":
                return fmt_rps(vals[k])
            return fmt_ms(vals[k])

        ratio = None
        if t_ratio is None:
            # A row oidc-provider does not run: compared with Tessera's bearer ES256 row.
            bearer = med("tessera", "es256", "rps")
            o = {k: None for k in o}
            ratio = t["rps"] / bearer if t["rps"] and bearer else None
        elif t["rps"] and o["rps"]:
            ratio = t["rps"] / o["rps"]
        if "tessera" in sides:
            if t["rps"] is None:
                rps_verdict = "MISS"
            else:
                rps_verdict = "PASS" if t["rps"] >= t_rps else "MISS"
            tr = f"≥ {t_rps:,}: {rps_verdict}"
            any_miss |= rps_verdict == "MISS"
        else:
            tr = f"≥ {t_rps:,}: n/a"
        if t_ratio is None:
            trat = "of bearer ES256"
        elif "tessera" in sides and "oidc-provider" in sides:
            ratio_verdict = "PASS" if ratio is not None and ratio >= t_ratio else "MISS"
            trat = f"≥ {t_ratio:g}x: {ratio_verdict}"
            any_miss |= ratio_verdict == "MISS"
        else:
            trat = f"≥ {t_ratio:g}x: n/a"
        w(f"| {label} | {cell('tessera', t, 'rps')} | {cell('tessera', t, 'p50_us')} | {cell('tessera', t, 'p99_us')} "
          f"| {cell('oidc-provider', o, 'rps')} | {cell('oidc-provider', o, 'p50_us')} | {cell('oidc-provider', o, 'p99_us')} "
          f"| {'–' if ratio is None else f'{ratio:.1f}x'} | {tr} | {trat} |")
    w("")
    if "bare" in sides and BARE_ROW in rows_sel:
        out.extend(limit_section(runs, failures, med))
    elif "tessera" in sides and BARE_ROW in rows_sel:
        w("Limit row (Tessera vs the bare signer): left out (BENCH_BARE=0).")
        w("")
    w("Server memory after the rows (VmRSS, peak VmHWM in parentheses):")
    w("")
    for side, name in (("tessera", "Tessera"), ("oidc-provider", "oidc-provider (node)"), ("bare", "bare signer")):
        if side in sides:
            rss = meta.get(f"rss_{side.replace('-', '_')}", "?")
            hwm = meta.get(f"hwm_{side.replace('-', '_')}", "?")
            w(f"- {name}: {rss} ({hwm})" if rss else f"- {name}: not running at the end")
    w("")
    if failures:
        w("Failures:")
        w("")
        for (side, row), why in sorted(failures.items()):
            w(f"- {side} / {row}: {why}")
        w("")
    notes = []
    for (side, row), rs in sorted(runs.items()):
        errs = sum(r.get(k, 0) for r in rs for k in ("connect_err", "read_err", "write_err", "timeout_err"))
        if errs:
            notes.append(f"- {side} / {row}: {int(errs)} socket errors (connect/read/write/timeout) over all runs")
    if notes:
        w("Socket errors reported by wrk:")
        w("")
        out.extend(notes)
        w("")
    w("<details><summary>individual runs (req/s, p50, p99)</summary>")
    w("")
    w("| side | row | run | req/s | p50 | p99 | requests |")
    w("|---|---|---:|---:|---:|---:|---:|")
    for key, _label, _a, _b in ROWS:
        for side in SIDES:
            for r in sorted(runs.get((side, key), []), key=lambda d: d["rep"]):
                w(f"| {side} | {key} | {r['rep']} | {fmt_rps(r['rps'])} | {fmt_ms(r['p50_us'])} "
                  f"| {fmt_ms(r['p99_us'])} | {int(r['requests']):,} |")
    w("")
    w("</details>")
    w("")
    servers = [n for side, n in (("tessera", "Tessera"), ("oidc-provider", "node"), ("bare", "the bare signer"))
               if side in sides]
    w("Every measured and warm-up run is checked by bench/post.lua: any response with status != 200 "
      "(or a 200 body without `access_token` / `\"active\":true`) fails the row. "
      f"wrk and the servers ({', '.join(servers)}) share the machine's CPUs.")
    print("\n".join(out))


def main():
    if len(sys.argv) < 2:
        die(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "free-port":
        free_port()
    elif cmd == "json-get":
        json_get(args[0])
    elif cmd == "urlencode":
        print(urllib.parse.quote(args[0], safe=""))
    elif cmd == "random-secret":
        print(secrets.token_urlsafe(32))
    elif cmd == "check-token":
        check_token(args[0])
    elif cmd == "check-introspection":
        check_introspection()
    elif cmd == "report":
        report(args[0], args[1])
    else:
        die(f"unknown command {cmd}\n{__doc__}")


if __name__ == "__main__":
    main()

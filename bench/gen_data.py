#!/usr/bin/env python3
"""Generates benchmark input for `confd -onetime` (file or etcdv3 backend).

Data, in the seed layout /services/web/<domain>/<host>/{ip,port}: 10 hosts per
domain and 2 keys per host, so --keys N gives N/20 domains and exactly N keys.

Confdir, with --resources R resource files conf.d/haproxy-NNN.toml, each
rendering the whole tree through the HAProxy template (bench/haproxy.cfg.tmpl:
one acl/use_backend per domain, one backend per domain with a server line per
host) into its own dest, <dest-dir>/haproxy-NNN.cfg. No check_cmd, no
reload_cmd. By default every resource gets its own copy of the template (as a
real deployment with R different files would); --shared-template points every
resource at one template file instead.

--etcd URL loads the same keys into etcd through its v3 JSON gateway (every
key etcd holds is deleted first), in transactions of 128 puts (etcd's default
--max-txn-ops), for `-backend etcdv3 -node URL`. With --etcd-api v2 it loads
them through the v2 keys API instead (etcd must run with --enable-v2; v2 and v3
are separate key spaces in etcd 3.x), for `-backend etcd -node URL`: every
top-level v2 node is deleted first, then one PUT per key, 16 at a time over
keep-alive connections (v2 has no batch write). --data-prefix P puts the tree
under P/services/web instead (several prefixes: repeat --etcd loads with
--keep, which skips the deletion).

--prefixes P1,P2,... gives resource r the confd `prefix` P[r % count] (the
template still reads /services/web, relative to that prefix); --reload-cmd
sets every resource's reload_cmd.

Usage:
    gen_data.py --keys 10000 --data DIR/data.yaml
    gen_data.py --keys 10000 --etcd http://127.0.0.1:2379
    gen_data.py --keys 10000 --etcd http://127.0.0.1:2379 --etcd-api v2
    gen_data.py --keys 1000 --etcd URL --etcd-api v2 --data-prefix /blue --keep
    gen_data.py --resources 10 --confdir DIR/confdir --dest-dir DIR/out
    gen_data.py --keys 10000 --resources 10 --data D --confdir C --dest-dir O

Python 3 standard library only.
"""

import argparse
import base64
import http.client
import json
import os
import sys
import threading
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "haproxy.cfg.tmpl")

HOSTS_PER_DOMAIN = 10
KEYS_PER_HOST = 2
KEYS_PER_DOMAIN = HOSTS_PER_DOMAIN * KEYS_PER_HOST


def domains(keys):
    """Yields (domain, [(host, ip, port), ...]) in a fixed, reproducible order."""
    count = keys // KEYS_PER_DOMAIN
    width = max(len(str(count)), 1)
    for d in range(count):
        name = "d%0*d.example.com" % (width, d)
        hosts = []
        for h in range(1, HOSTS_PER_DOMAIN + 1):
            ip = "10.%d.%d.%d" % ((d >> 8) & 255, d & 255, h)
            hosts.append(("web%d" % h, ip, str(8000 + h)))
        yield name, hosts


def write_yaml(path, keys):
    with open(path, "w", encoding="utf-8") as out:
        out.write("# %d keys: /services/web/<domain>/<host>/{ip,port}\n" % keys)
        out.write("services:\n  web:\n")
        for domain, hosts in domains(keys):
            out.write('    "%s":\n' % domain)
            for host, ip, port in hosts:
                out.write('      %s:\n        ip: "%s"\n        port: "%s"\n' % (host, ip, port))


def write_json(path, keys):
    web = {}
    for domain, hosts in domains(keys):
        web[domain] = {host: {"ip": ip, "port": port} for host, ip, port in hosts}
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"services": {"web": web}}, out, separators=(",", ":"))


def pairs(keys, data_prefix=""):
    for domain, hosts in domains(keys):
        for host, ip, port in hosts:
            base = "%s/services/web/%s/%s" % (data_prefix.rstrip("/"), domain, host)
            yield base + "/ip", ip
            yield base + "/port", port


def load_etcd(url, keys, batch=128, data_prefix="", keep=False):
    def b64(text):
        return base64.b64encode(text.encode()).decode()

    def post(path, body):
        request = urllib.request.Request(
            url.rstrip("/") + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        if "error" in answer:
            raise SystemExit("etcd %s: %s" % (path, answer))
        return answer

    # Everything: from "\0" with range_end "\0".
    if not keep:
        post("/v3/kv/deleterange", {"key": b64("\0"), "range_end": b64("\0")})
    ops = []
    for key, value in pairs(keys, data_prefix):
        ops.append({"requestPut": {"key": b64(key), "value": b64(value)}})
        if len(ops) == batch:
            post("/v3/kv/txn", {"success": ops})
            ops = []
    if ops:
        post("/v3/kv/txn", {"success": ops})
    root = data_prefix.rstrip("/") + "/services/web/"
    answer = post("/v3/kv/range", {"key": b64(root), "range_end": b64(root[:-1] + "0"),
                                   "count_only": True})
    count = int(answer.get("count", 0))
    if count != keys:
        raise SystemExit("etcd holds %d keys under %s after loading %d" % (count, root, keys))


def load_etcd_v2(url, keys, data_prefix="", keep=False, workers=16):
    """One PUT per key through the v2 keys API, `workers` at a time."""
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname, parsed.port or 2379
    local = threading.local()

    def request(method, path, body=None, headers=None):
        for attempt in range(3):
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(host, port, timeout=60)
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def quote(key):
        return urllib.parse.quote(key, safe="/")

    if not keep:
        status, body = request("GET", "/v2/keys/")
        if status != 200:
            raise SystemExit("etcd v2 GET /: %d %s (is etcd running with --enable-v2?)"
                             % (status, body[:200]))
        for node in json.loads(body)["node"].get("nodes", []):
            status, body = request("DELETE", "/v2/keys%s?recursive=true" % quote(node["key"]))
            if status not in (200, 404):
                raise SystemExit("etcd v2 DELETE %s: %d %s" % (node["key"], status, body[:200]))

    form = {"Content-Type": "application/x-www-form-urlencoded"}

    def put(pair):
        key, value = pair
        status, body = request("PUT", "/v2/keys" + quote(key),
                               "value=" + urllib.parse.quote(value, safe=""), form)
        if status not in (200, 201):
            raise SystemExit("etcd v2 PUT %s: %d %s" % (key, status, body[:200]))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(put, pairs(keys, data_prefix), chunksize=64):
            pass

    root = data_prefix.rstrip("/") + "/services/web"
    status, body = request("GET", "/v2/keys%s?recursive=true" % quote(root))
    if status != 200:
        raise SystemExit("etcd v2 GET %s: %d %s" % (root, status, body[:200]))

    def leaves(node):
        if node.get("dir"):
            return sum(leaves(child) for child in node.get("nodes", []))
        return 1

    count = leaves(json.loads(body)["node"])
    if count != keys:
        raise SystemExit("etcd (v2) holds %d keys under %s after loading %d" % (count, root, keys))


def write_confdir(confdir, dest_dir, resources, shared_template, distinct=False,
                  prefixes=None, reload_cmd=None):
    conf_d = os.path.join(confdir, "conf.d")
    templates = os.path.join(confdir, "templates")
    os.makedirs(conf_d, exist_ok=True)
    os.makedirs(templates, exist_ok=True)
    os.makedirs(dest_dir, exist_ok=True)
    with open(TEMPLATE, encoding="utf-8") as f:
        template = f.read()
    dest_dir = os.path.abspath(dest_dir)
    for r in range(resources):
        name = "haproxy-%03d" % r
        src = "haproxy.cfg.tmpl" if shared_template else name + ".cfg.tmpl"
        if not shared_template or r == 0:
            with open(os.path.join(templates, src), "w", encoding="utf-8") as f:
                # A Tera comment makes each copy's text unique (same output),
                # so confd cannot share one render between resources.
                f.write(("{# copy %d #}" % r if distinct else "") + template)
        with open(os.path.join(conf_d, name + ".toml"), "w", encoding="utf-8") as f:
            f.write(
                "[template]\n"
                "src = %s\n"
                "dest = %s\n"
                'keys = ["/services/web"]\n'
                'mode = "0644"\n' % (json.dumps(src), json.dumps(os.path.join(dest_dir, name + ".cfg")))
            )
            if prefixes:
                f.write("prefix = %s\n" % json.dumps(prefixes[r % len(prefixes)]))
            if reload_cmd:
                f.write("reload_cmd = %s\n" % json.dumps(reload_cmd))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1000, help="number of keys, a multiple of 20")
    parser.add_argument("--data", help="data file to write (.yaml, .yml or .json)")
    parser.add_argument("--etcd", metavar="URL", help="load the keys into this etcd (v3 gateway)")
    parser.add_argument("--etcd-api", choices=("v2", "v3"), default="v3",
                        help="load through etcd's v3 JSON gateway (default) or the v2 keys API")
    parser.add_argument("--data-prefix", default="", metavar="P",
                        help="load the tree under P/services/web (with --etcd)")
    parser.add_argument("--keep", action="store_true",
                        help="with --etcd: keep what etcd holds (no deletion first)")
    parser.add_argument("--prefixes", metavar="P1,P2,...",
                        help="resource r gets confd prefix P[r %% count]")
    parser.add_argument("--reload-cmd", metavar="CMD", help="every resource's reload_cmd")
    parser.add_argument("--resources", type=int, default=1, help="number of resources (R)")
    parser.add_argument("--confdir", help="confdir to create (conf.d/ and templates/)")
    parser.add_argument("--dest-dir", help="folder the resources render into")
    parser.add_argument("--distinct-templates", action="store_true",
                        help="make each template copy's text unique (no shared renders)")
    parser.add_argument("--shared-template", action="store_true",
                        help="one template file for every resource instead of one copy each")
    args = parser.parse_args()

    if args.keys <= 0 or args.keys % KEYS_PER_DOMAIN:
        parser.error("--keys must be a positive multiple of %d" % KEYS_PER_DOMAIN)
    if args.resources <= 0:
        parser.error("--resources must be positive")
    if not args.data and not args.confdir and not args.etcd:
        parser.error("give --data, --etcd and/or --confdir")
    if args.confdir and not args.dest_dir:
        parser.error("--confdir needs --dest-dir")

    if args.data:
        parent = os.path.dirname(os.path.abspath(args.data))
        os.makedirs(parent, exist_ok=True)
        if args.data.endswith(".json"):
            write_json(args.data, args.keys)
        else:
            write_yaml(args.data, args.keys)
    if args.etcd:
        if args.etcd_api == "v2":
            load_etcd_v2(args.etcd, args.keys, args.data_prefix, args.keep)
        else:
            load_etcd(args.etcd, args.keys, data_prefix=args.data_prefix, keep=args.keep)
    if args.confdir:
        prefixes = [p for p in (args.prefixes or "").split(",") if p] or None
        write_confdir(args.confdir, args.dest_dir, args.resources, args.shared_template,
                      args.distinct_templates, prefixes, args.reload_cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())

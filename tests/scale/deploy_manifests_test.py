#!/usr/bin/env python3
"""Structural checks of the deployment files, since no Docker daemon or
Kubernetes cluster runs here: deploy/k8s/*.yaml parsed and held to what eco really
accepts (flags, ports, probe paths), labels and selectors that match, resources and a
non-root securityContext everywhere; the Dockerfile's stages, install script, user and
ports; the merge step run against a stand-in kubectl with real `eco bench` results.

Usage: deploy_manifests_test.py --root REPO --eco ECO_BINARY
Prints one PASS/FAIL line per check and "N passed, M failed"; exit 1 on any failure.
"""
import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

try:
    import yaml
except ImportError:
    # A pyenv or venv python without PyYAML: Debian's python3-yaml is on /usr/bin/python3.
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("deploy_manifests_test: needs PyYAML (python3-yaml, installed by scripts/install-deps.sh)")

SERVER_LABELS = {"app.kubernetes.io/name": "eco", "app.kubernetes.io/component": "server"}

passed = 0
failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS: {what}")
    else:
        failed += 1
        print(f"FAIL: {what}" + (f": {detail}" if detail else ""))


def flags_of(eco, sub):
    """The long and short flags `eco SUB --help` lists."""
    out = subprocess.run([eco, *sub.split(), "--help"], capture_output=True, text=True, timeout=10).stdout
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", out))


def flag_value(args, *names):
    for i, a in enumerate(args):
        if a in names and i + 1 < len(args):
            return args[i + 1]
        for n in names:
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def parse_duration_s(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text)
    if not m:
        return None
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "ms" else v * 60 if m.group(2) == "m" else v


def load_manifests(k8s_dir):
    docs = {}
    for name in sorted(os.listdir(k8s_dir)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(k8s_dir, name)) as f:
            try:
                parsed = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as e:
                check(f"{name} parses as YAML", False, str(e))
                continue
        check(f"{name} parses as YAML ({len(parsed)} document(s))", len(parsed) > 0)
        for d in parsed:
            ok = isinstance(d, dict) and d.get("apiVersion") and d.get("kind") and \
                (d["kind"] == "Kustomization" or d.get("metadata", {}).get("name"))
            check(f"{name}: {d.get('kind')} has apiVersion, kind and a name", bool(ok))
            docs.setdefault(d["kind"], []).append((name, d))
    return docs


def check_pod_security(where, pod_spec, container):
    psc = pod_spec.get("securityContext", {})
    csc = container.get("securityContext", {})
    user = csc.get("runAsUser", psc.get("runAsUser"))
    check(f"{where}: runs as non-root (runAsNonRoot, runAsUser {user})",
          (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")) is True and isinstance(user, int) and user != 0)
    check(f"{where}: no privilege escalation, read-only root, all capabilities dropped",
          csc.get("allowPrivilegeEscalation") is False and csc.get("readOnlyRootFilesystem") is True
          and "ALL" in csc.get("capabilities", {}).get("drop", []))
    res = container.get("resources", {})
    check(f"{where}: cpu and memory requests and limits set",
          all(k in res.get(r, {}) for r in ("requests", "limits") for k in ("cpu", "memory")), str(res))
    return user


def cpu_cores(q):
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--eco", required=True)
    opt = ap.parse_args()
    root, eco = opt.root, os.path.abspath(opt.eco)
    k8s = os.path.join(root, "deploy", "k8s")

    with open(os.path.join(root, "CMakeLists.txt")) as f:
        version = re.search(r"project\(eco VERSION ([\d.]+)", f.read()).group(1)
    image = f"eco:{version}"
    serve_flags = flags_of(eco, "serve")
    bench_flags = flags_of(eco, "bench")

    docs = load_manifests(k8s)
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "Job", "Kustomization"):
        check(f"deploy/k8s has a {kind}", kind in docs)
    if failed:
        return

    # --- Deployment: labels, args that eco accepts, ports, probes ---
    _, dep = docs["Deployment"][0]
    spec = dep["spec"]
    tmpl_labels = spec["template"]["metadata"]["labels"]
    match = spec["selector"]["matchLabels"]
    check("Deployment selector matches its pod template's labels",
          match.items() <= tmpl_labels.items() and match == SERVER_LABELS, f"{match} vs {tmpl_labels}")
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    check(f"Deployment image is {image} (project version)", c.get("image") == image, c.get("image"))
    args = c["args"]
    check("Deployment runs `eco serve`", c.get("command") == ["/usr/local/bin/eco"] and args[0] == "serve")
    used = {a.split("=", 1)[0] for a in args[1:] if a.startswith("-")}
    check(f"every flag in the Deployment's args exists in `eco serve --help` ({' '.join(sorted(used))})",
          used <= serve_flags, f"unknown: {sorted(used - serve_flags)}")
    listen = flag_value(args, "-l", "--listen")
    metrics = flag_value(args, "--metrics")
    ports = {(p["name"]): p for p in c["ports"]}
    check("echo-tcp/echo-udp container ports are eco's -l port",
          listen is not None and ports["echo-tcp"]["containerPort"] == port_of(listen)
          and ports["echo-udp"]["containerPort"] == port_of(listen) and ports["echo-udp"]["protocol"] == "UDP"
          and "--udp" in args)
    check("metrics container port is eco's --metrics port",
          metrics is not None and ports["metrics"]["containerPort"] == port_of(metrics))
    rp, lp = c.get("readinessProbe", {}).get("httpGet", {}), c.get("livenessProbe", {}).get("httpGet", {})
    check("readiness probe: GET /readyz on the metrics port", rp.get("path") == "/readyz" and rp.get("port") == "metrics", rp)
    check("liveness probe: GET /healthz on the metrics port", lp.get("path") == "/healthz" and lp.get("port") == "metrics", lp)
    user = check_pod_security("Deployment", pod, c)
    threads = int(flag_value(args, "-t", "--threads") or 0)
    check(f"eco threads (-t {threads}) fit the CPU limit ({c['resources']['limits']['cpu']})",
          0 < threads <= max(1, cpu_cores(c["resources"]["limits"]["cpu"])))
    drain = parse_duration_s(flag_value(args, "--drain-timeout") or "5s")
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_s = float(pre[-1]) if pre and pre[0].endswith("sleep") else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(f"terminationGracePeriodSeconds ({grace}) > preStop ({pre_s:g} s) + --drain-timeout ({drain:g} s)",
          grace > pre_s + drain)

    # The exact argument vector starts a working server (addresses moved to loopback
    # port 0): flags parse together, and it drains and exits 0 on SIGTERM.
    with tempfile.TemporaryDirectory() as tmp:
        run = [eco] + [("127.0.0.1:0" if a in (listen, metrics) else a) for a in args]
        run += ["--port-file", os.path.join(tmp, "port")]
        p = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        up = False
        for _ in range(100):
            if os.path.exists(os.path.join(tmp, "port")) or p.poll() is not None:
                up = p.poll() is None
                break
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = "hung"
        err = p.stderr.read()
        check("the Deployment's eco args start a server that exits 0 on SIGTERM", up and rc == 0, f"rc={rc} {err[-300:]}")

    # --- Service and PDB select the pods; ports point at named container ports ---
    _, svc = docs["Service"][0]
    sel = svc["spec"]["selector"]
    check("Service selector matches the Deployment's pods", sel.items() <= tmpl_labels.items(), sel)
    for sp in svc["spec"]["ports"]:
        tp = sp["targetPort"]
        cp = ports.get(tp) if isinstance(tp, str) else next((q for q in c["ports"] if q["containerPort"] == tp), None)
        check(f"Service port {sp['name']} -> container port {tp} ({sp.get('protocol', 'TCP')})",
              cp is not None and cp.get("protocol", "TCP") == sp.get("protocol", "TCP")
              and (sp["port"] == cp["containerPort"]))
    _, pdb = docs["PodDisruptionBudget"][0]
    check("PodDisruptionBudget selects the Deployment's pods",
          pdb["spec"]["selector"]["matchLabels"].items() <= tmpl_labels.items())
    mu, ma = pdb["spec"].get("maxUnavailable"), pdb["spec"].get("minAvailable")
    check(f"PodDisruptionBudget leaves pods serving during a drain (replicas {spec['replicas']})",
          (isinstance(mu, int) and 1 <= mu < spec["replicas"]) or (isinstance(ma, int) and 0 < ma < spec["replicas"]))

    # --- Job: N bench pods against the Service, JSON out ---
    _, job = docs["Job"][0]
    js = job["spec"]
    jpod = js["template"]["spec"]
    (jc,) = jpod["containers"]
    check(f"Job runs {js.get('completions')} bench pods at once",
          js.get("completions", 1) > 1 and js.get("parallelism") == js.get("completions"))
    check(f"Job image is {image}", jc.get("image") == image, jc.get("image"))
    jargs = jc["args"]
    check("Job runs `eco bench ... --json`", jargs[0] == "bench" and "--json" in jargs)
    jused = {a.split("=", 1)[0] for a in jargs[1:] if a.startswith("-")}
    check(f"every flag in the Job's args exists in `eco bench --help` ({' '.join(sorted(jused))})",
          jused <= bench_flags, f"unknown: {sorted(jused - bench_flags)}")
    target = next(a for a in jargs[1:] if not a.startswith("-") and ":" in a)
    host, tport = target.rsplit(":", 1)
    svc_tcp = next(sp for sp in svc["spec"]["ports"] if sp.get("protocol", "TCP") == "TCP" and sp["name"] == "echo-tcp")
    check(f"Job targets the Service ({target})", host == svc["metadata"]["name"] and int(tport) == svc_tcp["port"])
    check("Job pods do not restart on failure (a failed bench is a result)",
          jpod.get("restartPolicy") == "Never" and js.get("backoffLimit") == 0)
    check_pod_security("Job", jpod, jc)
    kust = docs["Kustomization"][0][1]
    check("kustomization lists files that exist",
          all(os.path.exists(os.path.join(k8s, r)) for r in kust.get("resources", [])))

    # --- Dockerfile ---
    with open(os.path.join(root, "deploy", "docker", "Dockerfile")) as f:
        lines = [ln.strip() for ln in f.read().replace("\\\n", " ").splitlines() if ln.strip() and not ln.startswith("#")]
    froms = [ln.split()[1:] for ln in lines if ln.upper().startswith("FROM ")]
    check(f"Dockerfile is multi-stage on Debian 12 ({', '.join(' '.join(x) for x in froms)})",
          len(froms) >= 2 and all(x[0].startswith("debian:12") for x in froms))
    runs = " ".join(ln for ln in lines if ln.upper().startswith("RUN "))
    check("Dockerfile builds with scripts/install-deps.sh and the release preset",
          "scripts/install-deps.sh" in runs and "cmake --preset release" in runs and "cmake --build --preset release" in runs)
    last_from = max(i for i, ln in enumerate(lines) if ln.upper().startswith("FROM "))
    users = [ln.split()[1] for ln in lines[last_from:] if ln.upper().startswith("USER ")]
    fuser = users[-1].split(":")[0] if users else "root"
    check(f"final stage runs as a non-root numeric user ({fuser}), the one the manifests use",
          fuser.isdigit() and int(fuser) != 0 and int(fuser) == user)
    exposed = set()
    for ln in lines:
        if ln.upper().startswith("EXPOSE "):
            exposed |= {p if "/" in p else p + "/tcp" for p in ln.split()[1:]}
    want = {f"{p['containerPort']}/{p['protocol'].lower()}" for p in c["ports"]}
    check(f"EXPOSE ({' '.join(sorted(exposed))}) matches the container ports", exposed == want, str(want))
    ep = json.loads(next(ln[len("ENTRYPOINT"):] for ln in lines if ln.upper().startswith("ENTRYPOINT")))
    cmd = json.loads(next(ln[len("CMD"):] for ln in lines if ln.upper().startswith("CMD")))
    cused = {a for a in cmd[1:] if a.startswith("-")}
    check("ENTRYPOINT is eco and CMD's flags exist in `eco serve --help`",
          ep == ["/usr/local/bin/eco"] and cmd[0] == "serve" and cused <= serve_flags, f"unknown: {cused - serve_flags}")
    check("CMD serves on the same ports as the manifests",
          port_of(flag_value(cmd, "-l")) == port_of(listen) and port_of(flag_value(cmd, "--metrics")) == port_of(metrics))
    rp_script = os.path.join(root, "deploy", "docker", "runtime-packages.sh")
    out = subprocess.run([rp_script, eco], capture_output=True, text=True, timeout=30)
    pkgs = out.stdout.split()
    check(f"runtime-packages.sh names the packages of eco's libraries ({' '.join(pkgs)})",
          out.returncode == 0 and "libc6" in pkgs and "libstdc++6" in pkgs and "libfmt9" in pkgs, out.stderr)

    # --- the merge step, against a stand-in kubectl holding two real bench results ---
    check_merge_step(root, eco)


def check_merge_step(root, eco):
    with tempfile.TemporaryDirectory() as tmp:
        srv = subprocess.Popen([eco, "serve", "-l", "127.0.0.1:0", "-t", "1", "-q", "--port-file", f"{tmp}/port"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if os.path.exists(f"{tmp}/port") and open(f"{tmp}/port").read().strip():
                    break
                time.sleep(0.05)
            port = open(f"{tmp}/port").read().strip()
            rts = []
            for i in range(2):
                r = subprocess.run([eco, "bench", f"127.0.0.1:{port}", "--conns", "2", "--duration", "0.5s",
                                    "--warmup", "0", "--json", "-q"], capture_output=True, text=True, timeout=30)
                # What `kubectl logs` shows: stderr lines around the JSON.
                with open(f"{tmp}/eco-bench-{i}-x.log", "w") as f:
                    f.write("eco: some warning on stderr\n" + r.stdout + "eco: trailing stderr line\n")
                rts.append(json.loads(r.stdout)["round_trips"])
        finally:
            srv.terminate()
            srv.wait(timeout=30)
        kubectl = f"""#!/usr/bin/env bash
# Stand-in for kubectl: a finished 2-pod eco-bench Job whose logs are in {tmp}.
args="$*"
case "$args" in
  *"jsonpath={{.spec.completions}}"*) echo 2 ;;
  *"jsonpath={{.status.succeeded}}"*) echo "1 1" ;;
  *"get pods"*) echo "eco-bench-0-x eco-bench-1-x" ;;
  *"logs eco-bench-0-x"*) cat {tmp}/eco-bench-0-x.log ;;
  *"logs eco-bench-1-x"*) cat {tmp}/eco-bench-1-x.log ;;
  *) echo "kubectl stand-in: unexpected: $args" >&2; exit 2 ;;
esac
"""
        os.makedirs(f"{tmp}/bin")
        with open(f"{tmp}/bin/kubectl", "w") as f:
            f.write(kubectl)
        os.chmod(f"{tmp}/bin/kubectl", 0o755)
        env = dict(os.environ, PATH=f"{tmp}/bin:{os.environ['PATH']}", ECO=shlex.quote(eco), OUT=f"{tmp}/out")
        r = subprocess.run([os.path.join(root, "deploy", "k8s", "merge-bench.sh"), "--json"],
                           capture_output=True, text=True, env=env, timeout=60)
        try:
            merged = json.loads(r.stdout)
        except ValueError:
            merged = {}
        check(f"merge-bench.sh merges the pods' JSON with eco bench merge ({merged.get('round_trips')} = {sum(rts)} round trips, "
              f"{merged.get('hosts')} hosts)",
              r.returncode == 0 and merged.get("round_trips") == sum(rts) and merged.get("hosts") == 2,
              f"rc={r.returncode} {r.stderr[-400:]}")


if __name__ == "__main__":
    main()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

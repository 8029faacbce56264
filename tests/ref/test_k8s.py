#!/usr/bin/python3
"""The Kubernetes manifests in deploy/k8s/ (issue 7, acceptance 5), checked without a cluster.

1. Schema: every object is validated against the Kubernetes API types of Debian's python3-kubernetes
   (the client's models are generated from the Kubernetes OpenAPI document): every field must exist in
   its type (a misspelt or misplaced key is an error, which kubectl would also reject), values must have
   the field's type, and required fields must be present (the client's own checks). The client (22.6,
   Kubernetes 1.22) predates autoscaling/v2, so the HPA is checked against autoscaling/v2beta2, whose
   schema v2 took over unchanged. No kubeconform/kubeval is packaged in Debian 12.
2. What the issue asks for: readiness on /readyz and liveness on /healthz at the container's port;
   requests and limits for CPU and memory on every container (init containers too), requests <= limits;
   a non-root security context (runAsNonRoot, a non-zero uid equal to the image's USER in
   docker/Dockerfile, no privilege escalation, read-only root, all capabilities dropped, seccomp); models
   from an init container into a volume the daemon reads them from; a Service whose selector and
   targetPort match the pods; an HPA on CPU targeting the Deployment; a PDB; a kustomization listing all.
3. Consistency with the daemon: every VISIOND_* variable is a real setting (`visiond serve
   --print-config`); workers x blas_threads fit the CPU limit; the keys file lies in a mounted Secret;
   the grace period covers the preStop pause plus visiond's drain_timeout_ms.
4. The checker can fail: broken copies of the manifests (a probe removed, an unknown field, a limit
   removed, root) must each be reported.

usage: test_k8s.py --visiond build/visiond    (run from the project root)
Exit 0 if all pass, 1 on any failure (also if PyYAML or python3-kubernetes is missing).
"""
import argparse
import copy
import pathlib
import re
import subprocess
import sys

try:
    import yaml
    from kubernetes import client as k8s
except ImportError as e:
    print(f"FAIL: {e} (scripts/install-deps installs python3-yaml and python3-kubernetes)")
    sys.exit(1)

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DRAIN_TIMEOUT_S = 10  # visiond's drain_timeout_ms default
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


# ---- 1. schema -------------------------------------------------------------------------------------

def model_name(api_version, kind):
    group, _, version = api_version.rpartition("/")
    if group == "autoscaling" and version == "v2":
        version = "v2beta2"  # see the docstring
    return version[0].upper() + version[1:] + kind


PRIMITIVES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "datetime": (str,),
              "date": (str,), "object": (object,)}


def validate(value, typ, path, errors):
    """Appends to `errors` every way `value` (parsed YAML) does not fit the client type `typ`."""
    if typ in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[typ]) and not (typ in ("int", "float") and isinstance(value, bool))
        if not ok:
            errors.append(f"{path}: {value!r} is not {typ}")
        return
    m = re.fullmatch(r"list\[(.*)\]", typ)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: not a list")
            return
        for i, item in enumerate(value):
            validate(item, m.group(1), f"{path}[{i}]", errors)
        return
    m = re.fullmatch(r"dict\(str, (.*)\)", typ)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: not a map")
            return
        for k, v in value.items():
            validate(v, m.group(1), f"{path}.{k}", errors)
        return
    cls = getattr(k8s, typ, None)
    if cls is None:
        errors.append(f"{path}: unknown type {typ}")
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: not an object ({typ})")
        return
    by_json = {j: a for a, j in cls.attribute_map.items()}
    for key, v in value.items():
        if key not in by_json:
            errors.append(f"{path}.{key}: no such field in {typ}")
        else:
            validate(v, cls.openapi_types[by_json[key]], f"{path}.{key}", errors)


def schema_errors(doc):
    name = model_name(doc.get("apiVersion", ""), doc.get("kind", ""))
    if not hasattr(k8s, name):
        return [f"{doc.get('kind')} {doc.get('apiVersion')}: no such Kubernetes type ({name})"]
    errors = []
    validate(doc, name, doc["kind"], errors)
    try:  # required fields: the client's models refuse None for them
        k8s.ApiClient()._ApiClient__deserialize(doc, name)
    except (ValueError, TypeError) as e:
        errors.append(f"{doc['kind']}: {e}")
    return errors


# ---- 2. and 3. what visiond needs ------------------------------------------------------------------

UNITS = {"": 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}


def quantity(q):
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(q))
    if not m or m.group(2) not in UNITS:
        raise ValueError(f"bad quantity {q!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def probe_ok(container, probe, path):
    action = (container.get(probe) or {}).get("httpGet") or {}
    ports = {p.get("name") for p in container.get("ports", [])} | {p["containerPort"] for p in container.get("ports", [])}
    return action.get("path") == path and action.get("port") in ports


def image_uid():
    m = re.search(r"^USER (\d+)", (ROOT / "docker" / "Dockerfile").read_text(), re.M)
    return int(m.group(1)) if m else None


def container_problems(c, where):
    p = []
    res = c.get("resources") or {}
    for kind in ("cpu", "memory"):
        req, lim = (res.get("requests") or {}).get(kind), (res.get("limits") or {}).get(kind)
        if req is None or lim is None:
            p.append(f"{where}: no {kind} request and limit")
        elif quantity(req) > quantity(lim):
            p.append(f"{where}: {kind} request {req} above limit {lim}")
    sc = c.get("securityContext") or {}
    if sc.get("allowPrivilegeEscalation") is not False:
        p.append(f"{where}: allowPrivilegeEscalation is not false")
    if sc.get("readOnlyRootFilesystem") is not True:
        p.append(f"{where}: readOnlyRootFilesystem is not true")
    if sc.get("privileged"):
        p.append(f"{where}: privileged")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        p.append(f"{where}: capabilities not all dropped")
    return p


def deployment_problems(dep, settings):
    """Everything the issue and the daemon require of the Deployment; [] if it is right."""
    p = []
    pod = dep["spec"]["template"]["spec"]
    psc = pod.get("securityContext") or {}
    uid = image_uid()
    if psc.get("runAsNonRoot") is not True or not psc.get("runAsUser"):
        p.append("pod: runAsNonRoot and a non-zero runAsUser are required")
    elif uid is not None and psc["runAsUser"] != uid:
        p.append(f"pod: runAsUser {psc['runAsUser']} is not the image's USER {uid} (docker/Dockerfile)")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        p.append("pod: no RuntimeDefault seccomp profile")
    containers = pod.get("containers", [])
    inits = pod.get("initContainers", [])
    for c in inits:
        p += container_problems(c, f"initContainer {c.get('name')}")
    main = next((c for c in containers if c.get("name") == "visiond"), None)
    if main is None:
        return p + ["no container named visiond"]
    p += container_problems(main, "container visiond")
    if not probe_ok(main, "readinessProbe", "/readyz"):
        p.append("container visiond: readinessProbe is not GET /readyz on its port")
    if not probe_ok(main, "livenessProbe", "/healthz"):
        p.append("container visiond: livenessProbe is not GET /healthz on its port")
    env = {e["name"]: e.get("value") for e in main.get("env", [])}
    for name in env:
        if name.startswith("VISIOND_") and name[8:].lower() not in settings:
            p.append(f"env {name}: not a visiond setting")
    mounts = {m["mountPath"]: m["name"] for m in main.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    models = env.get("VISIOND_MODELS")
    vol = mounts.get(models)
    if not vol:
        p.append("VISIOND_MODELS is not a mounted volume")
    elif not any(m["name"] == vol for c in inits for m in c.get("volumeMounts", [])):
        p.append(f"no init container fills the models volume {vol}")
    keys = env.get("VISIOND_KEYS") or ""
    secret_mounts = [path for path, name in mounts.items() if "secret" in volumes.get(name, {})]
    if not any(keys.startswith(path.rstrip("/") + "/") for path in secret_mounts):
        p.append("VISIOND_KEYS is not a file in a mounted Secret (visiond needs keys on 0.0.0.0)")
    try:
        threads = int(env.get("VISIOND_WORKERS", 0)) * int(env.get("VISIOND_BLAS_THREADS", 1))
        cpus = quantity(main["resources"]["limits"]["cpu"])
        if not 0 < threads <= cpus:
            p.append(f"workers x blas_threads = {threads} does not fit the CPU limit {cpus:g}")
    except (KeyError, ValueError, TypeError) as e:
        p.append(f"VISIOND_WORKERS / CPU limit: {e}")
    pre = (((main.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
    pause = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
    if pod.get("terminationGracePeriodSeconds", 30) < pause + DRAIN_TIMEOUT_S:
        p.append("terminationGracePeriodSeconds does not cover preStop + drain_timeout_ms")
    return p


def check_service(svc, dep):
    labels = dep["spec"]["template"]["metadata"]["labels"]
    sel = svc["spec"].get("selector") or {}
    check(sel and all(labels.get(k) == v for k, v in sel.items()), "Service selects the Deployment's pods")
    names = {p.get("name") for c in dep["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    check(all(p.get("targetPort") in names for p in svc["spec"]["ports"]), "Service targetPort is the container port")


def check_hpa(hpa, dep):
    ref = hpa["spec"]["scaleTargetRef"]
    check(ref == {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"]},
          "HPA scales the Deployment")
    cpu = [m for m in hpa["spec"].get("metrics", []) if m.get("type") == "Resource"
           and m["resource"]["name"] == "cpu" and m["resource"]["target"]["type"] == "Utilization"]
    check(len(cpu) == 1 and 0 < cpu[0]["resource"]["target"]["averageUtilization"] <= 100, "HPA on CPU utilization")
    check(1 <= hpa["spec"].get("minReplicas", 1) < hpa["spec"]["maxReplicas"], "HPA min < max replicas")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    out = subprocess.run([args.visiond, "serve", "--config", "/dev/null", "--print-config"],
                         capture_output=True, text=True, check=False).stdout
    settings = set(re.findall(r"^([a-z_][a-z_0-9]*) *=", out, re.M))
    check(len(settings) >= 17, f"visiond lists its {len(settings)} settings")

    files = sorted(K8S.glob("*.yaml"))
    docs = {}
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                docs[doc["kind"]] = doc
    kust = docs.pop("Kustomization", None)
    check(kust is not None and sorted(kust["resources"]) == sorted(f.name for f in files if f.name != "kustomization.yaml"),
          "kustomization.yaml lists every manifest")
    check({"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= set(docs),
          f"Deployment, Service, HPA and PDB present ({sorted(docs)})")
    for kind, doc in docs.items():
        errors = schema_errors(doc)
        check(not errors, f"{kind} ({doc['apiVersion']}) fits the Kubernetes schema" + "".join("\n     " + e for e in errors))
    dep = docs["Deployment"]
    problems = deployment_problems(dep, settings)
    check(not problems, "Deployment: probes, resources, security context, models, keys, sizing" +
          "".join("\n     " + e for e in problems))
    check_service(docs["Service"], dep)
    check_hpa(docs["HorizontalPodAutoscaler"], dep)
    pdb = docs["PodDisruptionBudget"]["spec"]
    check(pdb["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items(),
          "PDB selects the Deployment's pods")

    # 4. The checks must be able to fail.
    def broken(edit):
        d = copy.deepcopy(dep)
        edit(d["spec"]["template"]["spec"])
        return schema_errors(d) + deployment_problems(d, settings)
    c0 = lambda pod: pod["containers"][0]  # noqa: E731
    mutations = {
        "readinessProbe removed": lambda pod: c0(pod).pop("readinessProbe"),
        "liveness on the wrong path": lambda pod: c0(pod)["livenessProbe"]["httpGet"].update(path="/"),
        "unknown field": lambda pod: c0(pod).update(readinesProbe={}),
        "wrong type": lambda pod: c0(pod)["ports"][0].update(containerPort="8080"),
        "memory limit removed": lambda pod: c0(pod)["resources"]["limits"].pop("memory"),
        "root": lambda pod: pod["securityContext"].update(runAsNonRoot=False, runAsUser=0),
        "capabilities kept": lambda pod: c0(pod)["securityContext"].pop("capabilities"),
        "unknown setting": lambda pod: c0(pod)["env"].append({"name": "VISIOND_WORKER", "value": "2"}),
        "container name missing": lambda pod: c0(pod).pop("name"),
    }
    for what, edit in mutations.items():
        check(broken(edit), f"a Deployment with {what} is rejected")
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared tooling of the chart tests: builds the renderer (render/main.go, Go's text/template + sprig, the
Helm objects the chart uses) into the build directory and renders the chart with values files into parsed
YAML documents. Debian's golang-go, golang-github-masterminds-sprig-dev, golang-k8s-sigs-yaml-dev,
python3-yaml and python3-jsonschema; nothing is downloaded (GOPATH mode against /usr/share/gocode)."""

import glob
import json
import os
import re
import subprocess
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CHART = os.path.join(ROOT, "deploy", "helm", "baribhara-gateway")
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "kubernetes", "values-*.yaml")))
RELEASE = "bgw"
NAMESPACE = "gateway"


def build_dir():
    """Where the renderer is built: BGW_HELM_BUILD_DIR (set by ctest), else build/tests/helm."""
    return os.environ.get("BGW_HELM_BUILD_DIR") or os.path.join(ROOT, "build", "tests", "helm")


_renderer = None


def renderer():
    """The path of the renderer binary, built once per process (atomically replaced, so that two test
    modules building at once do not see a half-written file)."""
    global _renderer
    if _renderer:
        return _renderer
    out_dir = build_dir()
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, "bgw-helm-render")
    tmp = "%s.%d" % (target, os.getpid())
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOFLAGS="", GOENV="off",
               GOPROXY="off", GOCACHE=os.path.join(out_dir, "go-cache"), CGO_ENABLED="0")
    r = subprocess.run(["go", "build", "-o", tmp, "."], cwd=os.path.join(HERE, "render"), env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("building the renderer failed (are golang-go, golang-github-masterminds-sprig-dev "
                           "and golang-k8s-sigs-yaml-dev installed?):\n" + r.stdout + r.stderr)
    os.replace(tmp, target)
    _renderer = target
    return target


class RenderError(Exception):
    pass


def render_text(values=(), release=RELEASE, namespace=NAMESPACE, lookup=None, notes=False, values_json=None,
                extra=None):
    """The rendered manifests (or NOTES.txt) as text. values: paths of values files, or dicts (written to
    temporary files), merged in order. lookup: a dict "apiVersion/kind/namespace/name" -> object."""
    with tempfile.TemporaryDirectory(prefix="bgw-helm-") as d:
        args = [renderer(), "--chart", CHART, "--release", release, "--namespace", namespace]
        for i, v in enumerate(values):
            if isinstance(v, dict):
                path = os.path.join(d, "values-%d.yaml" % i)
                with open(path, "w") as f:
                    yaml.safe_dump(v, f)
                v = path
            args += ["-f", v]
        if lookup is not None:
            path = os.path.join(d, "lookup.json")
            with open(path, "w") as f:
                json.dump(lookup, f)
            args += ["--lookup", path]
        if notes:
            args.append("--notes")
        if values_json:
            args += ["--values-json", values_json]
        args += list(extra or ())
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise RenderError(r.stderr.strip())
        return r.stdout


def render(values=(), **kw):
    """The rendered manifests as a list of dicts (empty documents dropped)."""
    return [d for d in yaml.safe_load_all(render_text(values, **kw)) if d is not None]


def merged_values(values=()):
    """The values the chart sees (values.yaml merged with the files), as the renderer computed them."""
    with tempfile.TemporaryDirectory(prefix="bgw-helm-") as d:
        path = os.path.join(d, "merged.json")
        try:
            render_text(values, values_json=path)
        except RenderError:
            if not os.path.exists(path):    # written before the templates run: only values errors are fatal
                raise
        with open(path) as f:
            return json.load(f)


def schema():
    with open(os.path.join(CHART, "values.schema.json")) as f:
        return json.load(f)


def find(docs, kind, name=None, component=None):
    """The documents of a kind, optionally by name or app.kubernetes.io/component label."""
    out = []
    for d in docs:
        if d.get("kind") != kind:
            continue
        md = d.get("metadata", {})
        if name is not None and md.get("name") != name:
            continue
        if component is not None and md.get("labels", {}).get("app.kubernetes.io/component") != component:
            continue
        out.append(d)
    return out


def one(docs, kind, **kw):
    found = find(docs, kind, **kw)
    if len(found) != 1:
        raise AssertionError("expected one %s %r, found %d" % (kind, kw, len(found)))
    return found[0]


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        m = re.search(r"project\(\s*\S+\s+VERSION\s+([0-9][0-9.]*)", f.read())
    return m.group(1)


def container(deployment, name=None):
    cs = deployment["spec"]["template"]["spec"]["containers"]
    if name is None:
        assert len(cs) == 1, "one container expected"
        return cs[0]
    return [c for c in cs if c["name"] == name][0]


def parse_args(args):
    """["--a=b", "--c", ...] -> list of (flag, value or None), in order."""
    out = []
    for a in args:
        if not a.startswith("--"):
            raise AssertionError("argument %r is not a --flag" % a)
        if "=" in a:
            k, v = a.split("=", 1)
            out.append((k, v))
        else:
            out.append((a, None))
    return out


def join_args(pairs):
    return [k if v is None else "%s=%s" % (k, v) for (k, v) in pairs]

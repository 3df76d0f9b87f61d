#!/usr/bin/env bash
# Checks the deployment files of deploy/ and docker/ without deploying anything or
# contacting any server. It checks the YAML syntax, the Kubernetes objects, the rules
# ConfigMap against queries/, the compose file's ports and mounts, every example main file
# with `koji_exporter --config.check`, the Prometheus configurations with promtool, and the
# systemd unit with systemd-analyze. Checks whose tool is missing (shellcheck, docker
# compose, nomad, hadolint) are reported as skipped.
#
#   scripts/check-deploy.sh            run the checks; exit 1 when one fails
#   scripts/check-deploy.sh --update   first rewrite deploy/kubernetes/21-rules-configmap.yaml
#                                      from queries/
#
# The exporter binary is taken from $BUILD_DIR (default build/); build it first.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
exporter=$build_dir/koji_exporter
# Debian's own interpreter, which sees the python3-yaml package, rather than whichever
# python3 comes first on PATH.
python=/usr/bin/python3
rules_configmap=$root/deploy/kubernetes/21-rules-configmap.yaml

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/koji-exporter-check-deploy.XXXXXX")
trap 'rm -rf "$work_dir"' EXIT

passed=0
failed=0
skipped=0

# Runs one check: NAME COMMAND [ARG...]. Its output is shown only when it fails.
check() {
  local name=$1
  shift
  if "$@" >"$work_dir/output" 2>&1; then
    echo "check-deploy: ok: $name"
    passed=$((passed + 1))
  else
    cat "$work_dir/output" >&2
    echo "check-deploy: FAILED: $name" >&2
    failed=$((failed + 1))
  fi
}

skip() {
  echo "check-deploy: skipped: $1 ($2)"
  skipped=$((skipped + 1))
}

# The Python part: YAML checks and the rules ConfigMap. Usage: deploy_yaml COMMAND [ARG...].
deploy_yaml() {
  "$python" - "$root" "$@" <<'PYTHON'
import glob
import os
import re
import sys
import textwrap

import yaml

root, command, *args = sys.argv[1:]
NAMESPACE = "koji-monitoring"
RULES_CONFIGMAP = os.path.join(root, "deploy/kubernetes/21-rules-configmap.yaml")
RULES_HEADER = """\
# ConfigMap koji-exporter-rules: the rule files of queries/, mounted as
# /etc/koji_exporter/queries/. Generated, do not edit: after changing queries/, rewrite it
# from the repository root with
#   scripts/check-deploy.sh --update
# or create the ConfigMap straight from queries/ without this file:
#   kubectl create configmap koji-exporter-rules --namespace=koji-monitoring \\
#     --from-file=queries/ --dry-run=client -o yaml | kubectl apply -f -
# The exporter reads changed files at its next reload, a minute or so after the apply:
#   kubectl exec --namespace=koji-monitoring deploy/koji-exporter -- bash -c 'kill -HUP 1'
"""


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def rule_files():
    paths = sorted(glob.glob(os.path.join(root, "queries", "*.yaml")))
    return {os.path.basename(path): open(path, encoding="utf-8").read() for path in paths}


class Literal(str):
    pass


def represent_literal(dumper, text):
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")


def update_rules_configmap():
    yaml.add_representer(Literal, represent_literal, Dumper=yaml.SafeDumper)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "koji-exporter-rules",
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": "koji-exporter"},
        },
        "data": {name: Literal(text) for name, text in rule_files().items()},
    }
    body = yaml.safe_dump(configmap, sort_keys=False, width=1000, allow_unicode=True)
    with open(RULES_CONFIGMAP, "w", encoding="utf-8") as out:
        out.write(RULES_HEADER + body)


def check_rules_configmap():
    configmap = yaml.safe_load(open(RULES_CONFIGMAP, encoding="utf-8"))
    data = configmap.get("data") or {}
    expected = rule_files()
    stale = sorted(name for name in expected.keys() | data.keys()
                   if data.get(name) != expected.get(name))
    if stale:
        fail(f"{RULES_CONFIGMAP} differs from queries/ in: {', '.join(stale)}; "
             "rewrite it with scripts/check-deploy.sh --update")


def check_syntax():
    paths = sorted(glob.glob(os.path.join(root, "deploy", "**", "*.yaml"), recursive=True)
                   + glob.glob(os.path.join(root, "docker", "*.yaml")))
    for path in paths:
        try:
            list(yaml.safe_load_all(open(path, encoding="utf-8")))
        except yaml.YAMLError as error:
            fail(f"{path}: {error}")
    print(f"{len(paths)} files parsed")


def kubernetes_documents():
    documents = []
    for path in sorted(glob.glob(os.path.join(root, "deploy", "kubernetes", "*.yaml"))):
        documents += [(path, doc) for doc in yaml.safe_load_all(open(path, encoding="utf-8")) if doc]
    return documents


def namespace_problems(documents):
    problems = []
    for path, doc in documents:
        for key in ("apiVersion", "kind", "metadata"):
            if key not in doc:
                problems.append(f"{path}: {key} is missing")
        metadata = doc.get("metadata") or {}
        if doc.get("kind") == "Namespace":
            if metadata.get("name") != NAMESPACE:
                problems.append(f"{path}: namespace is not {NAMESPACE}")
        elif metadata.get("namespace") != NAMESPACE:
            problems.append(f"{path}: {doc.get('kind')} {metadata.get('name')} is not in {NAMESPACE}")
    return problems


def deployment_problems(documents):
    deployments = [doc for _, doc in documents if doc.get("kind") == "Deployment"]
    if len(deployments) != 1:
        return [f"expected one Deployment, found {len(deployments)}"]
    pod = deployments[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    problems = []
    if deployments[0]["spec"].get("replicas") != 1:
        problems.append("the Deployment does not run exactly 1 replica")
    if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
        problems.append("the pod does not set runAsNonRoot")
    if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
        problems.append("the container's root file system is not read-only")
    for probe in ("livenessProbe", "readinessProbe"):
        if container.get(probe, {}).get("httpGet", {}).get("path") != "/healthz":
            problems.append(f"the container's {probe} does not get /healthz")
    if "resources" not in container:
        problems.append("the container sets no resources")

    mounted = {mount["name"] for mount in container.get("volumeMounts", [])}
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for name in mounted - volumes.keys():
        problems.append(f"volume mount {name} has no volume")
    defined = {(doc["kind"], doc["metadata"]["name"]) for _, doc in documents}
    for volume in volumes.values():
        if "configMap" in volume and not volume["configMap"].get("optional"):
            if ("ConfigMap", volume["configMap"]["name"]) not in defined:
                problems.append(f"ConfigMap {volume['configMap']['name']} is not defined")
        if "secret" in volume and ("Secret", volume["secret"]["secretName"]) not in defined:
            problems.append(f"Secret {volume['secret']['secretName']} is not defined")
    return problems


def check_kubernetes():
    """Checks what kubectl cannot check without a cluster: namespaces and the pod spec."""
    documents = kubernetes_documents()
    problems = namespace_problems(documents) + deployment_problems(documents)
    if problems:
        fail("\n".join(problems))


def check_compose():
    """Checks what `docker compose config` does not: local ports and mounted paths."""
    compose_dir = os.path.join(root, "docker")
    compose = yaml.safe_load(open(os.path.join(compose_dir, "compose.yaml"), encoding="utf-8"))
    problems = []
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problems.append(f"service {name}: port {port} is not bound to 127.0.0.1")
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(".") and not os.path.exists(os.path.join(compose_dir, source)):
                problems.append(f"service {name}: mounted path {source} does not exist")
    if problems:
        fail("\n".join(problems))


def main_files():
    """Yields (name, text) for every example main file of the exporter."""
    for relative in ("deploy/koji_exporter.yaml", "docker/koji_exporter.yaml"):
        yield relative, open(os.path.join(root, relative), encoding="utf-8").read()
    for path in sorted(glob.glob(os.path.join(root, "deploy", "kubernetes", "*.yaml"))):
        for doc in yaml.safe_load_all(open(path, encoding="utf-8")):
            if doc and doc.get("kind") == "ConfigMap" and "koji_exporter.yaml" in doc.get("data", {}):
                yield os.path.relpath(path, root), doc["data"]["koji_exporter.yaml"]
    nomad = os.path.join(root, "deploy", "nomad", "koji_exporter.nomad.hcl")
    text = open(nomad, encoding="utf-8").read()
    match = re.search(r'destination\s*=\s*"local/koji_exporter.yaml".*?<<-EOF\n(.*?)\n\s*EOF', text, re.S)
    if not match:
        fail(f"{nomad}: no template for local/koji_exporter.yaml")
    yield os.path.relpath(nomad, root), textwrap.dedent(match.group(1))


def write_main_files(out_dir):
    """Writes each main file with local paths for its rule files and password file."""
    password_file = os.path.join(out_dir, "password")
    open(password_file, "w").write("unused\n")
    for index, (name, text) in enumerate(main_files()):
        config = yaml.safe_load(text)
        config["rule_files"] = [os.path.join(root, "queries", "*.yaml")]
        if "password_file" in config.get("database", {}):
            config["database"]["password_file"] = password_file
        path = os.path.join(out_dir, f"main-{index}.yaml")
        with open(path, "w") as out:
            yaml.safe_dump(config, out)
        print(f"{path}\t{name}")


commands = {
    "update-rules-configmap": update_rules_configmap,
    "check-rules-configmap": check_rules_configmap,
    "check-syntax": check_syntax,
    "check-kubernetes": check_kubernetes,
    "check-compose": check_compose,
    "write-main-files": lambda: write_main_files(args[0]),
}
commands[command]()
PYTHON
}

# Runs `koji_exporter --config.check` on each example main file, with local paths.
check_main_files() {
  local listing path name status=0
  listing=$(deploy_yaml write-main-files "$work_dir") || return 1
  while IFS=$'\t' read -r path name; do
    if ! "$exporter" --config.file="$path" --config.check; then
      echo "$name: rejected by koji_exporter --config.check" >&2
      status=1
    fi
  done <<<"$listing"
  return "$status"
}

# Runs promtool on a copy of docker/prometheus.yaml laid out as compose mounts it.
check_compose_prometheus() {
  local dir=$work_dir/compose-prometheus
  mkdir -p "$dir/rules"
  cp "$root/docker/prometheus.yaml" "$dir/prometheus.yml"
  cp "$root/deploy/prometheus/alerts.yaml" "$root/deploy/prometheus/recording.yaml" "$dir/rules/"
  promtool check config "$dir/prometheus.yml"
}

# systemd-analyze verify needs the programs of ExecStart= and ExecReload= to exist, so a
# copy of the unit runs the built exporter instead of /usr/local/bin/koji_exporter.
check_systemd_unit() {
  local unit=$work_dir/koji_exporter.service
  sed "s|/usr/local/bin/koji_exporter|$exporter|" "$root/deploy/systemd/koji_exporter.service" >"$unit"
  SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$unit" &&
    # Fails when the exposure score of the unit's sandbox (0 locked down, 10 exposed) is
    # above 2.0; the unit as written scores 1.4 with systemd 252.
    systemd-analyze security --offline=yes --threshold=20 "$unit" | tail -n 1
}

if [ "${1:-}" = "--update" ]; then
  deploy_yaml update-rules-configmap || exit 1
  echo "check-deploy: rewrote ${rules_configmap#"$root"/}"
elif [ $# -gt 0 ]; then
  echo "usage: scripts/check-deploy.sh [--update]" >&2
  exit 2
fi

if ! "$python" -c 'import yaml' 2>/dev/null; then
  echo "check-deploy: $python cannot import yaml: apt-get install python3-yaml" >&2
  exit 1
fi

check "YAML syntax of deploy/ and docker/" deploy_yaml check-syntax
check "rules ConfigMap matches queries/" deploy_yaml check-rules-configmap
check "Kubernetes objects, namespace and pod spec" deploy_yaml check-kubernetes

if [ -x "$exporter" ]; then
  check "example main files pass koji_exporter --config.check" check_main_files
else
  skip "example main files" "no $exporter: run scripts/build.sh first"
fi

if command -v promtool >/dev/null; then
  check "promtool check config deploy/prometheus/scrape.yaml" \
    promtool check config "$root/deploy/prometheus/scrape.yaml"
  check "promtool check config docker/prometheus.yaml" check_compose_prometheus
else
  skip "promtool checks" "promtool not installed: apt-get install --no-install-recommends prometheus"
fi

if command -v systemd-analyze >/dev/null && [ -x "$exporter" ]; then
  check "systemd-analyze verify and security of the unit" check_systemd_unit
else
  skip "systemd unit" "needs systemd-analyze and $exporter"
fi

if command -v shellcheck >/dev/null; then
  check "shellcheck of docker/postgres-init.sh and this script" \
    shellcheck "$root/docker/postgres-init.sh" "$root/scripts/check-deploy.sh"
else
  skip "shellcheck" "shellcheck not installed"
fi

check "compose file: ports on 127.0.0.1, mounted paths exist" deploy_yaml check-compose
if docker compose version >/dev/null 2>&1; then
  check "docker compose config" docker compose -f "$root/docker/compose.yaml" config --quiet
else
  skip "docker compose config" "the docker compose plugin is not installed"
fi

if command -v hadolint >/dev/null; then
  check "hadolint docker/Dockerfile" hadolint "$root/docker/Dockerfile"
else
  skip "hadolint docker/Dockerfile" "hadolint not installed"
fi

if command -v nomad >/dev/null; then
  check "nomad fmt -check" nomad fmt -check "$root/deploy/nomad/koji_exporter.nomad.hcl"
else
  skip "nomad job file" "nomad not installed"
fi

echo "check-deploy: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

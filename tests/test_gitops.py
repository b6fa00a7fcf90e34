"""The GitOps objects (gitops/): the Flux Kustomizations are what `vcpl gitops` derives from the
overlays, every overlay is synced exactly once by each tool, names and namespaces agree with the
overlays, the AppProject admits everything the overlays render and little else, and Argo CD's
sync order puts ExternalSecrets before the workloads."""
from __future__ import annotations

import copy
import fnmatch
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from conftest import ROOT
from test_schemas import problems
from vcpl import generate, gitops, paths, render, yamlio

GITOPS = ROOT / "gitops"
ARGOCD = GITOPS / "argocd"
FLUX = GITOPS / "flux"
OVERLAYS = render.overlays()
OVERLAY_DIRS = {f"overlays/{env}/{venue}" for env, venue in OVERLAYS}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# gitops-engine's apply order within one phase and wave (gitops-engine/pkg/sync/sync_tasks.go,
# argo-cd v3.6.1): these kinds in this order, then every other kind (custom resources) after them.
ARGO_KIND_ORDER = [
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
    "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
    "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job",
    "CronJob", "IngressClass", "Ingress", "APIService",
]
WORKLOADS = {"StatefulSet", "CronJob", "Deployment", "DaemonSet", "Job", "Pod"}
SYNC_WAVE = "argocd.argoproj.io/sync-wave"


def _build(directory: Path) -> list[dict[str, Any]]:
    return yamlio.load_all(render.build_dir(directory))


def _argocd() -> dict[str, dict[str, Any]]:
    """The venue objects by kind (the VPN gateway's own project and ApplicationSet are apart)."""
    return {doc["kind"]: doc for doc in _build(ARGOCD) if doc["metadata"]["name"] == "venue-connectivity"}


def _vpn_argocd() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in _build(ARGOCD) if doc["metadata"]["name"] == "vpn-gateway"}


def _flux(env: str) -> list[dict[str, Any]]:
    """The Flux Kustomizations of the venue overlays of one environment."""
    return [doc for doc in _build(FLUX / env) if "vcpl.dev/venue" in doc["metadata"].get("labels", {})]


def go_path_match(pattern: str, name: str) -> bool:
    """Go's path.Match, which Argo CD's git directory generator uses: `*` never crosses a `/`."""
    parts, names = pattern.split("/"), name.split("/")
    return len(parts) == len(names) and all(fnmatch.fnmatchcase(n, p.replace("[^", "[!")) for p, n in zip(parts, names))


def repo_directories() -> set[str]:
    """Every directory the Argo CD repo server lists for this repository (hidden ones excluded)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True)
    found = set()
    for name in out.stdout.splitlines():
        if not (ROOT / name).exists():
            continue
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            if not any(p.startswith(".") for p in parts[:i]):
                found.add("/".join(parts[:i]))
    return found


def generated_paths(generator: dict[str, Any], directories: set[str]) -> list[str]:
    """The paths a git directory generator yields: matched by an include, by no exclude."""
    rules = generator["git"]["directories"]
    return sorted(d for d in directories
                  if any(go_path_match(r["path"], d) for r in rules if not r.get("exclude"))
                  and not any(go_path_match(r["path"], d) for r in rules if r.get("exclude")))


_EXPRESSION = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def render_template(node: Any, path: str) -> Any:
    """The ApplicationSet template for one generated path. Only the expressions the template uses
    are understood; anything else fails the test rather than being guessed."""
    params = {".path.path": path, ".path.basename": path.rsplit("/", 1)[-1]}
    segments = path.split("/")

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        index = re.fullmatch(r"index \.path\.segments (\d+)", expression)
        if index:
            return segments[int(index.group(1))]
        if expression in params:
            return params[expression]
        raise AssertionError(f"template expression {{{{ {expression} }}}} is not understood by this test")

    if isinstance(node, dict):
        return {key: render_template(val, path) for key, val in node.items()}
    if isinstance(node, list):
        return [render_template(item, path) for item in node]
    if isinstance(node, str):
        return _EXPRESSION.sub(value, node)
    return node


def applications() -> dict[str, dict[str, Any]]:
    """overlay path -> the Application the ApplicationSet generates for it."""
    appset = _argocd()["ApplicationSet"]
    found: dict[str, dict[str, Any]] = {}
    for generator in appset["spec"]["generators"]:
        for path in generated_paths(generator, repo_directories()):
            assert path not in found, f"{path} is generated twice"
            found[path] = render_template(appset["spec"]["template"], path)
    return found


# --------------------------------------------------------------------------------------------
# Flux


def test_flux_objects_are_what_vcpl_gitops_derives() -> None:
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "vcpl"), "gitops", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_sync_check_reports_a_changed_missing_or_unowned_file() -> None:
    planned = gitops.planned()
    some = next(p for p in planned if p.name != "kustomization.yaml")
    changed = {**planned, some: planned[some] + "# edited\n"}
    assert any("out of date" in p for p in generate.differences(changed, gitops.on_disk(), "any overlay"))
    missing = {**planned, FLUX / "dev" / "kustomization.new-dev.yaml": "x"}
    assert any("missing" in p for p in generate.differences(missing, gitops.on_disk(), "any overlay"))
    fewer = {p: t for p, t in planned.items() if p != some}
    assert any("not produced by" in p for p in generate.differences(fewer, gitops.on_disk(), "any overlay"))


def test_every_overlay_has_exactly_one_flux_kustomization_in_its_environment() -> None:
    seen: dict[str, list[str]] = {}
    for env in paths.ENVIRONMENTS:
        for doc in _flux(env):
            assert doc["kind"] == "Kustomization", f"gitops/flux/{env}: unexpected {doc['kind']}"
            path = doc["spec"]["path"].removeprefix("./")
            assert path.startswith(f"overlays/{env}/"), f"gitops/flux/{env}: {doc['metadata']['name']} syncs {path}"
            seen.setdefault(path, []).append(doc["metadata"]["name"])
    twice = {p: n for p, n in seen.items() if len(n) > 1}
    assert not twice, f"overlays synced by more than one Kustomization: {twice}"
    assert set(seen) == OVERLAY_DIRS, f"not synced: {sorted(OVERLAY_DIRS - set(seen))}; not an overlay: {sorted(set(seen) - OVERLAY_DIRS)}"


def test_flux_kustomizations_prune_wait_on_the_gateway_and_follow_the_platform() -> None:
    source = yamlio.load_all(render.build_dir(FLUX))
    assert [d["kind"] for d in source] == ["GitRepository"]
    for env in paths.ENVIRONMENTS:
        for doc in _flux(env):
            spec, where = doc["spec"], doc["metadata"]["name"]
            assert spec["prune"] is True, where
            assert spec["timeout"], where
            assert spec["sourceRef"] == {"kind": "GitRepository", "name": source[0]["metadata"]["name"]}, where
            assert doc["metadata"]["namespace"] == source[0]["metadata"]["namespace"], where
            # and the environment's VPN gateway, for a venue reached over IPsec (tested below)
            assert {d["name"] for d in spec["dependsOn"]} - {f"vpn-gateway-{env}"} == {"platform-crds", "platform-secret-stores"}, where
            assert spec.get("wait") or spec.get("healthChecks"), f"{where}: neither wait nor healthChecks"


def test_flux_health_checks_name_objects_the_overlay_renders(rendered_overlays) -> None:
    for env in paths.ENVIRONMENTS:
        for doc in _flux(env):
            overlay = doc["spec"]["path"].removeprefix("./").split("/")
            rendered = {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in rendered_overlays[(overlay[1], overlay[2])]}
            for check in doc["spec"]["healthChecks"]:
                wanted = (check["kind"], check["name"], check.get("namespace"))
                assert wanted in rendered, f"{doc['metadata']['name']}: health check {wanted} is not rendered by {'/'.join(overlay)}"
            assert any(c["kind"] == "StatefulSet" for c in doc["spec"]["healthChecks"]), doc["metadata"]["name"]


# --------------------------------------------------------------------------------------------
# Argo CD


def test_go_glob_matching_is_per_segment() -> None:
    assert go_path_match("overlays/*/*", "overlays/dev/cme")
    assert not go_path_match("overlays/*/*", "overlays/dev/cme/extra")
    assert not go_path_match("overlays/*/*", "overlays/dev")
    assert not go_path_match("overlays/*", "overlays/dev/cme")


def test_the_applicationset_generates_exactly_one_application_per_overlay() -> None:
    generated = set(applications())
    assert generated == OVERLAY_DIRS, f"missed: {sorted(OVERLAY_DIRS - generated)}; not overlays: {sorted(generated - OVERLAY_DIRS)}"


def test_a_stray_directory_would_be_caught() -> None:
    appset = _argocd()["ApplicationSet"]
    directories = repo_directories() | {"overlays/dev/cme/patches", "overlays/staging/cme"}
    generated = {p for g in appset["spec"]["generators"] for p in generated_paths(g, directories)}
    assert "overlays/dev/cme/patches" not in generated
    assert "overlays/staging/cme" in generated - OVERLAY_DIRS, "a new environment folder must show up as a difference"


def test_applications_are_named_and_placed_like_the_overlays(rendered_overlays) -> None:
    project = _argocd()["AppProject"]["metadata"]["name"]
    names = set()
    for path, app in applications().items():
        _, env, venue = path.split("/")
        namespace = gitops.overlay_namespace(env, venue)
        assert app["metadata"]["name"] == f"{venue}-{env}" == gitops.name(env, venue), path
        assert DNS_LABEL.match(app["metadata"]["name"]), path
        assert app["spec"]["destination"]["namespace"] == namespace == f"venue-{venue}-{env}", path
        assert app["spec"]["source"]["path"] == path
        assert app["spec"]["project"] == project
        rendered = {d["metadata"].get("namespace") for d in rendered_overlays[(env, venue)]} - {None}
        assert rendered == {namespace}, f"{path} renders into {rendered}, the Application targets {namespace}"
        names.add(app["metadata"]["name"])
    assert len(names) == len(OVERLAY_DIRS)


def test_applications_sync_automatically_server_side_without_creating_namespaces() -> None:
    for path, app in applications().items():
        sync = app["spec"]["syncPolicy"]
        assert sync["automated"] == {"prune": True, "selfHeal": True}, path
        options = sync.get("syncOptions", [])
        assert "ServerSideApply=true" in options, path
        assert not [o for o in options if o.startswith("CreateNamespace")], f"{path}: {options}"


def _project_permits(project: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Argo CD's AppProject check (IsResourcePermitted): cluster-scoped objects by the whitelist
    (group, kind, name globs), namespaced ones by a destination namespace glob."""
    spec = project["spec"]
    group = doc["apiVersion"].rsplit("/", 1)[0] if "/" in doc["apiVersion"] else ""
    namespace = doc["metadata"].get("namespace")
    if not namespace:
        return any(fnmatch.fnmatchcase(doc["kind"], item["kind"]) and fnmatch.fnmatchcase(group, item["group"])
                   and fnmatch.fnmatchcase(doc["metadata"]["name"], item.get("name") or "*")
                   for item in spec.get("clusterResourceWhitelist", []))
    listed = spec.get("namespaceResourceWhitelist")
    if listed is not None and not any(fnmatch.fnmatchcase(doc["kind"], i["kind"]) and fnmatch.fnmatchcase(group, i["group"]) for i in listed):
        return False
    return any(fnmatch.fnmatchcase(namespace, d["namespace"]) for d in spec["destinations"])


def test_the_appproject_admits_every_rendered_object(rendered_overlays) -> None:
    project = _argocd()["AppProject"]
    refused = [f"{e}/{v}: {d['kind']}/{d['metadata']['name']}" for (e, v), docs in rendered_overlays.items()
               for d in docs if not _project_permits(project, d)]
    assert not refused, "\n".join(refused)
    for path, app in applications().items():
        assert any(fnmatch.fnmatchcase(app["spec"]["destination"]["namespace"], d["namespace"])
                   and d["server"] == app["spec"]["destination"]["server"] for d in project["spec"]["destinations"]), path


def test_the_appproject_refuses_what_the_overlays_do_not_render() -> None:
    project = _argocd()["AppProject"]
    meta = lambda name, namespace=None: {"name": name, **({"namespace": namespace} if namespace else {})}  # noqa: E731
    assert not _project_permits(project, {"apiVersion": "v1", "kind": "Namespace", "metadata": meta("kube-system")})
    assert not _project_permits(project, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta("admin")})
    assert not _project_permits(project, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("x", "kube-system")})
    assert _project_permits(project, {"apiVersion": "v1", "kind": "Namespace", "metadata": meta("venue-cme-prod")})


def test_one_repository_everywhere() -> None:
    argo = _argocd()
    appset, project = argo["ApplicationSet"], argo["AppProject"]
    urls = {g["git"]["repoURL"] for g in appset["spec"]["generators"]}
    urls.add(appset["spec"]["template"]["spec"]["source"]["repoURL"])
    urls.update(project["spec"]["sourceRepos"])
    urls.add(yamlio.load_all(render.build_dir(FLUX))[0]["spec"]["url"])
    assert len(urls) == 1, urls
    assert appset["spec"]["template"]["spec"]["project"] == project["metadata"]["name"]


def _argo_order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rank = {kind: i - len(ARGO_KIND_ORDER) for i, kind in enumerate(ARGO_KIND_ORDER)}
    return sorted(docs, key=lambda d: (int(d["metadata"].get("annotations", {}).get(SYNC_WAVE, "0")),
                                      rank.get(d["kind"], 0), d["metadata"]["name"]))


def _with_argo_patches(env: str, venue: str, tmp_path: Path) -> list[dict[str, Any]]:
    """The overlay as Argo CD renders it: the template's kustomize patches on top of it."""
    kustomize = _argocd()["ApplicationSet"]["spec"]["template"]["spec"]["source"]["kustomize"]
    folder = tmp_path / f"{env}-{venue}"
    folder.mkdir()
    wrapper = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
               "resources": [os.path.relpath(paths.overlay_dir(env, venue), folder)], "patches": kustomize["patches"]}
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(wrapper), encoding="utf-8")
    return _build(folder)


def test_argo_syncs_external_secrets_before_workloads(rendered_overlays, tmp_path: Path) -> None:
    checked = 0
    for (env, venue), plain in sorted(rendered_overlays.items()):
        if env != "prod" or not any(d["kind"] == "ExternalSecret" for d in plain):
            continue
        checked += 1
        _check_argo_order(env, venue, plain, tmp_path)
    assert checked, "no prod overlay renders an ExternalSecret: the ordering patch is untested"


def _check_argo_order(env: str, venue: str, plain: list[dict[str, Any]], tmp_path: Path) -> None:
    where = f"{env}/{venue}"
    # Argo's own kind order is not enough: custom resources come after every built-in kind.
    kinds = [d["kind"] for d in _argo_order(plain)]
    assert kinds.index("ExternalSecret") > kinds.index("StatefulSet"), f"{where}: the default order now covers it: drop the patch"
    patched = _with_argo_patches(env, venue, tmp_path)
    order = _argo_order(patched)
    last_secret = max(i for i, d in enumerate(order) if d["kind"] == "ExternalSecret")
    first_workload = min(i for i, d in enumerate(order) if d["kind"] in WORKLOADS)
    assert last_secret < first_workload, where
    waves = {d["metadata"].get("annotations", {}).get(SYNC_WAVE) for d in order if d["kind"] in WORKLOADS}
    secret_waves = {d["metadata"]["annotations"][SYNC_WAVE] for d in order if d["kind"] == "ExternalSecret"}
    assert waves == {None} and secret_waves == {"-1"}, f"{where}: workloads stay in wave 0, ExternalSecrets go to -1"
    # Nothing else changes: the patch only adds the annotation.
    stripped = copy.deepcopy(patched)
    for doc in stripped:
        annotations = doc["metadata"].get("annotations", {})
        if doc["kind"] == "ExternalSecret" and annotations.pop(SYNC_WAVE, None) is not None and not annotations:
            del doc["metadata"]["annotations"]
    assert sorted(map(repr, stripped)) == sorted(map(repr, plain)), f"{where}: the patch changed more than the sync wave"


# --------------------------------------------------------------------------------------------
# Files and schemas


def test_gitops_files_are_one_object_each_named_after_kind_and_name() -> None:
    wrong = []
    for path in sorted(GITOPS.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        if len(docs) != 1 or path.name != f"{docs[0]['kind'].lower()}.{docs[0]['metadata']['name']}.yaml":
            wrong.append(str(path.relative_to(ROOT)))
    assert not wrong, wrong
    listed = {p.parent for p in GITOPS.rglob("kustomization.yaml")}
    assert {p.parent for p in GITOPS.rglob("*.yaml")} <= listed, "a gitops folder has no kustomization.yaml"


def test_gitops_schemas_reject_a_misspelled_field() -> None:
    argo = _argocd()
    appset = copy.deepcopy(argo["ApplicationSet"])
    appset["spec"]["template"]["spec"]["syncPolicy"]["automated"]["prunee"] = True
    assert problems(appset), "a misspelled field in the ApplicationSet template was not rejected"
    project = copy.deepcopy(argo["AppProject"])
    project["spec"]["destinations"][0]["namespaces"] = "venue-*"
    assert problems(project)
    kustomization = copy.deepcopy(_flux("prod")[0])
    kustomization["spec"]["healthCheck"] = kustomization["spec"].pop("healthChecks")
    assert problems(kustomization)
    source = copy.deepcopy(yamlio.load_all(render.build_dir(FLUX))[0])
    source["spec"]["ref"]["brnach"] = "main"
    assert problems(source)


# --------------------------------------------------------------------------------------------
# The VPN gateway (platform/vpn-gateway/generated/<env>)

VPN_UNITS = sorted(p.name for p in (ROOT / "platform" / "vpn-gateway" / "generated").iterdir() if p.is_dir())


def test_every_vpn_gateway_unit_is_synced_once_by_each_tool_and_venues_wait_for_it() -> None:
    assert VPN_UNITS, "no environment has an IPsec venue: the test would prove nothing"
    appset = _vpn_argocd()["ApplicationSet"]
    paths_ = [p for g in appset["spec"]["generators"] for p in generated_paths(g, repo_directories())]
    assert paths_ == [f"platform/vpn-gateway/generated/{env}" for env in VPN_UNITS]
    for env in paths.ENVIRONMENTS:
        docs = _build(FLUX / env)
        gateways = [d for d in docs if d["metadata"]["name"] == f"vpn-gateway-{env}"]
        assert len(gateways) == (1 if env in VPN_UNITS else 0), env
        for doc in docs:
            venue = doc["metadata"].get("labels", {}).get("vcpl.dev/venue")
            if venue is None:
                continue
            waits = {"name": f"vpn-gateway-{env}"} in doc["spec"]["dependsOn"]
            assert waits == gitops.uses_vpn(env, venue), f"{venue}-{env}: dependsOn the VPN gateway iff the overlay composes components/vpn"
    assert any(gitops.uses_vpn(env, venue) for env, venue in OVERLAYS), "no overlay composes components/vpn"


def test_the_vpn_gateway_project_admits_only_its_own_namespace(rendered_overlays) -> None:
    project = _vpn_argocd()["AppProject"]
    assert [d["namespace"] for d in project["spec"]["destinations"]] == ["vcpl-vpn-gateway"]
    venue_project = _argocd()["AppProject"]
    for env in VPN_UNITS:
        for doc in _build(ROOT / "platform" / "vpn-gateway" / "generated" / env):
            assert _project_permits(project, doc), f"{doc['kind']}/{doc['metadata']['name']} refused by project vpn-gateway"
            if doc["kind"] == "Namespace":
                assert not _project_permits(venue_project, doc), "the venue project must never admit the privileged namespace"

"""`vcpl drift`: parsing kubectl diff recordings, the report, and the command's exit codes.

No cluster runs here: parsing is checked on recordings in tests/fixtures/drift (see its README),
and the kubectl path on small scripts that stand in for kubectl as real processes.
"""
from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest

from conftest import ROOT
from vcpl import drift
from vcpl.drift import CHANGED, MISSING, ObjectDrift
from vcpl.errors import VcplError

FIXTURES = ROOT / "tests" / "fixtures" / "drift"
NS = "venue-cme-prod"


def _recording(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _one_object(file_name: str, hunk: str, old: int, new: int) -> str:
    """A minimal diff of one object in kubectl's layout, for cases no recording covers."""
    return (
        f"diff -u -N /tmp/LIVE-1/{file_name} /tmp/MERGED-2/{file_name}\n"
        f"--- /tmp/LIVE-1/{file_name}\t2026-11-21 20:14:10.123456789 +0000\n"
        f"+++ /tmp/MERGED-2/{file_name}\t2026-11-21 20:14:10.124369120 +0000\n"
        f"@@ -1,{old} +1,{new} @@\n{hunk}"
    )


def _run(*argv: str) -> int:
    """The drift subcommand as cli.py will wire it: add_parser on a fresh parser, then its func."""
    top = argparse.ArgumentParser(prog="vcpl")
    drift.add_parser(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(["drift", *argv])
    code: int = args.func(args)
    return code


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# ---------------------------------------------------------------- parsing recordings


def test_hand_edited_image_and_removed_label() -> None:
    assert drift.parse(_recording("image-and-label.diff")) == [
        # generation 4 -> 5 is in the hunk too, but it is noise: not counted, not a field
        ObjectDrift("StatefulSet", NS, "venue-gateway", CHANGED, 1, 1, ("spec.template.spec.containers[gateway].image",)),
        ObjectDrift("Service", NS, "venue-gateway", CHANGED, 1, 0, ("metadata.labels",)),
    ]


def test_configmap_edited_in_the_cluster() -> None:
    # two edits inside the JSON: one field, the data key, not the JSON's own keys
    assert drift.parse(_recording("configmap-edited.diff")) == [
        ObjectDrift("ConfigMap", NS, "venue-gateway", CHANGED, 2, 2, ("data.gateway.json",)),
    ]


def test_objects_never_applied_are_missing() -> None:
    assert drift.parse(_recording("missing-objects.diff")) == [
        # kubectl names cluster-scoped objects `Kind..name`: empty namespace
        ObjectDrift("CiliumEgressGatewayPolicy", "", "cme-prod-venue-egress", MISSING, 32, 0, ()),
        ObjectDrift("NetworkPolicy", NS, "venue-egress", MISSING, 54, 0, ()),
    ]


def test_generation_only_is_no_drift() -> None:
    assert drift.parse(_recording("generation-only.diff")) == []
    assert drift.report("cme", "prod", []) == "cme/prod: no drift"


def test_three_line_context_gives_marked_partial_paths() -> None:
    drifts = drift.parse(_recording("image-and-label-plain.diff"))
    assert [(d.kind, d.added, d.removed, d.fields) for d in drifts] == [
        ("StatefulSet", 1, 1, ("...image",)),
        ("Service", 1, 0, ("...vcpl.dev/owner-team",)),
    ]


def test_empty_output_means_no_drift() -> None:
    assert drift.parse("") == []


# ---------------------------------------------------------------- parsing edge cases


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("v1.ConfigMap.venue-cme-prod.venue-gateway", ("ConfigMap", NS, "venue-gateway")),
        ("apps.v1.StatefulSet.venue-cme-prod.venue-gateway", ("StatefulSet", NS, "venue-gateway")),
        ("k8s.cni.cncf.io.v1beta1.MultiNetworkPolicy.venue-cme-prod.feed-lines", ("MultiNetworkPolicy", NS, "feed-lines")),
        ("cilium.io.v2.CiliumEgressGatewayPolicy..cme-prod-venue-egress", ("CiliumEgressGatewayPolicy", "", "cme-prod-venue-egress")),
        ("cilium.io.v2.CiliumEgressGatewayPolicy.cme-prod-venue-egress", ("CiliumEgressGatewayPolicy", "", "cme-prod-venue-egress")),
        ("v1.ConfigMap.venue-cme-prod.kube-root-ca.crt", ("ConfigMap", NS, "kube-root-ca.crt")),
    ],
)
def test_object_identity_from_kubectl_file_names(file_name: str, expected: tuple[str, str, str]) -> None:
    [found] = drift.parse(_one_object(file_name, "-a: 1\n+a: 2\n", 1, 1))
    assert (found.kind, found.namespace, found.name) == expected


def test_list_items_are_named_or_numbered_and_text_stops_the_path() -> None:
    hunk = (
        " spec:\n"
        "   clusterIPs:\n"
        "-  - 10.96.142.17\n"
        "+  - 10.96.142.18\n"
        "   ports:\n"
        "   - name: api\n"
        "     port: 7000\n"
        "   - name: metrics\n"
        "-    port: 9090\n"
        "+    port: 9091\n"
        "   - port: 8443\n"
        "-    targetPort: 8443\n"
        "+    targetPort: https\n"
        "   script: |\n"
        "     set -eu\n"
        "-    exit 0\n"
        "+    exit 1\n"
    )
    [found] = drift.parse(_one_object("v1.Service.venue-cme-prod.venue-gateway", hunk, 13, 13))
    assert found.fields == ("spec.clusterIPs[0]", "spec.ports[metrics].port", "spec.ports[2].targetPort", "spec.script")
    assert (found.added, found.removed) == (4, 4)


def test_generation_elsewhere_is_not_noise() -> None:
    hunk = " status:\n-  observedGeneration: 4\n+  observedGeneration: 5\n spec:\n-  generation: 1\n+  generation: 2\n"
    [found] = drift.parse(_one_object("example.com.v1.Widget.venue-cme-prod.w", hunk, 4, 4))
    assert found.fields == ("status.observedGeneration", "spec.generation")


def test_truncated_recording_is_refused() -> None:
    text = _recording("image-and-label.diff")
    with pytest.raises(VcplError, match="truncated"):
        drift.parse(text[: len(text) // 2])


def test_text_that_is_not_a_diff_is_refused() -> None:
    with pytest.raises(VcplError, match="not `kubectl diff` output"):
        drift.parse("error: the server doesn't have a resource type \"statefulsets\"\n")


# ---------------------------------------------------------------- report


def test_report_names_venue_env_and_each_object() -> None:
    drifts = drift.parse(_recording("image-and-label.diff")) + drift.parse(_recording("missing-objects.diff"))
    assert drift.report("cme", "prod", drifts).splitlines() == [
        "cme/prod StatefulSet/venue-cme-prod/venue-gateway: changed (+1 -1) fields: spec.template.spec.containers[gateway].image",
        "cme/prod Service/venue-cme-prod/venue-gateway: changed (+1 -0) fields: metadata.labels",
        "cme/prod CiliumEgressGatewayPolicy/cme-prod-venue-egress: missing in cluster",
        "cme/prod NetworkPolicy/venue-cme-prod/venue-egress: missing in cluster",
    ]


# ---------------------------------------------------------------- the command


def test_recorded_drift_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("cme", "prod", "--recorded", str(FIXTURES / "configmap-edited.diff")) == 1
    assert capsys.readouterr().out == "cme/prod ConfigMap/venue-cme-prod/venue-gateway: changed (+2 -2) fields: data.gateway.json\n"


def test_recorded_noise_only_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("cme", "prod", "--recorded", str(FIXTURES / "generation-only.diff")) == 0
    assert capsys.readouterr().out == "cme/prod: no drift\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--all", "--recorded", "x.diff"], "cannot be used with --all"),
        (["cme", "prod", "--all"], "not both"),
        (["cme"], "give VENUE ENV"),
        ([], "give VENUE ENV"),
        (["atlantis", "prod", "--recorded", "x.diff"], "no overlay overlays/prod/atlantis"),
        (["cme", "prod", "--recorded", "does-not-exist.diff"], "cannot read recorded diff"),
    ],
)
def test_bad_arguments_are_user_errors(argv: list[str], message: str) -> None:
    with pytest.raises(VcplError, match=message):
        _run(*argv)


def test_live_diff_runs_kubectl_with_the_rendered_overlay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A stand-in kubectl: records what it was given, prints a recording, exits 1 like kubectl with differences.
    kubectl = _script(
        tmp_path / "kubectl",
        f'printf "%s\\n" "$@" > "{tmp_path}/args"\n'
        f'cat > "{tmp_path}/stdin"\n'
        f'printf "%s" "$KUBECTL_EXTERNAL_DIFF" > "{tmp_path}/external-diff"\n'
        f'cat "{FIXTURES / "image-and-label.diff"}"\n'
        "exit 1\n",
    )
    assert _run("cme", "prod", "--kubectl", str(kubectl), "--context", "prod-east") == 1
    assert (tmp_path / "args").read_text().split() == ["--context", "prod-east", "diff", "-f", "-"]
    rendered = (tmp_path / "stdin").read_text()
    assert "kind: StatefulSet" in rendered and f"namespace: {NS}" in rendered
    assert (tmp_path / "external-diff").read_text() == drift.FULL_CONTEXT_DIFF
    assert "StatefulSet/venue-cme-prod/venue-gateway: changed" in capsys.readouterr().out


def test_live_diff_without_differences_exits_0(tmp_path: Path) -> None:
    kubectl = _script(tmp_path / "kubectl", "cat > /dev/null\nexit 0\n")
    assert _run("cme", "prod", "--kubectl", str(kubectl)) == 0


def test_kubectl_failure_is_a_user_error_with_its_message(tmp_path: Path) -> None:
    kubectl = _script(
        tmp_path / "kubectl",
        "cat > /dev/null\n"
        'echo \'error: context "prod-east" does not exist\' >&2\n'
        "exit 2\n",
    )
    with pytest.raises(VcplError, match=r'cme/prod: kubectl diff failed \(exit 2\):\nerror: context "prod-east" does not exist'):
        _run("cme", "prod", "--kubectl", str(kubectl), "--context", "prod-east")


def test_exit_1_without_a_diff_is_a_failure(tmp_path: Path) -> None:
    # kubectl before 1.18 exited 1 on errors too; a "difference" with no diff text is one of those.
    kubectl = _script(tmp_path / "kubectl", "cat > /dev/null\necho 'error: unable to recognize' >&2\nexit 1\n")
    with pytest.raises(VcplError, match="unable to recognize"):
        drift.run_kubectl_diff("apiVersion: v1\nkind: ConfigMap\n", kubectl=str(kubectl))


def test_missing_kubectl_path_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(VcplError, match=r"kubectl not found at .*/no-such-kubectl; install kubectl"):
        _run("cme", "prod", "--kubectl", str(tmp_path / "no-such-kubectl"))


def test_kubectl_not_on_path_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: nothing to find
    with pytest.raises(VcplError, match=r"kubectl is not on PATH; install kubectl .* or pass --kubectl"):
        drift.run_kubectl_diff("", kubectl="kubectl")


"""The credential scanner of the model: each detector catches its kind of literal and leaves references alone.

Every credential below is an obvious fake assembled at run time, so no file in git holds a value
that looks like a real key (and the repository's own literal-secret scan stays quiet).
"""
from __future__ import annotations

import base64
import json
import random
import string
import time

import pytest

from vcpl import render, yamlio
from vcpl.model.credentials import scan

BEGIN = "-----BEGIN "
END = "-----END "
STUB_BODY = "MIIfake"


def pem(label: str) -> str:
    return f"{BEGIN}{label}-----\n{STUB_BODY}\n{END}{label}-----\n"


def random_text(alphabet: str, length: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


BASE64 = string.ascii_letters + string.digits + "+/"
RANDOM_B64 = random_text(BASE64, 40, seed=8)
RANDOM_B64_SHORT = random_text(string.ascii_letters + string.digits, 20, seed=3)
RANDOM_HEX = random_text("0123456789abcdef", 40, seed=5)
AWS_KEY_ID = "AKIA" + "ABCDEFGHIJKLMNOP"
AWS_SESSION_KEY_ID = "ASIA" + "QRSTUVWXYZ234567"
GITHUB_CLASSIC = "gh" + "p_" + "Fake0" * 8
GITHUB_APP = "gh" + "s_" + "Fake1" * 8
GITHUB_OAUTH = "gh" + "o_" + "Fake2" * 8
GITHUB_FINE = "github" + "_pat_" + "Fake3" * 6
SLACK = "xo" + "xb-" + "000000-fake-slack"
JWT = ".".join(base64.urlsafe_b64encode(part.encode()).decode().rstrip("=") for part in ('{"alg":"none"}', '{"sub":"fake"}', "fake-signature"))
GOOGLE = "AI" + "za" + "Fake" * 8 + "FAK"
STRIPE = "sk" + "_live_" + "Fake" * 6
BEARER = "Fake" + "Bearer" + "Token" + "0123456789"
FAKE_PASSWORD = "Hunter2-fake"


def config_map(data: dict[str, str], name: str = "app") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deployment(container: dict, name: str = "app") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "busybox", **container}]}}},
    }


def cronjob(container: dict) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "job"},
        "spec": {"schedule": "0 0 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "main", "image": "busybox", **container}],
        }}}}},
    }


def only(findings: list[dict]) -> dict:
    assert len(findings) == 1, findings
    return findings[0]


def assert_masked(findings: list[dict], secret: str) -> None:
    for finding in findings:
        assert secret not in finding["evidence"], finding
        assert "****" in finding["evidence"], finding


# -- the shipped library -------------------------------------------------------------------------


@pytest.mark.parametrize("env,venue", render.overlays(), ids=[f"{e}-{v}" for e, v in render.overlays()])
def test_shipped_overlays_scan_clean(env: str, venue: str) -> None:
    objects = yamlio.load_all(render.build(env, venue))
    assert objects
    findings = [finding for obj in objects for finding in scan(obj)]
    assert findings == []


# -- pem -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK"])
def test_pem_private_key_in_a_configmap_is_found(label: str) -> None:
    findings = scan(config_map({"tls.conf": "# client key\n" + pem(label)}))
    finding = only(findings)
    assert finding == {"object": "ConfigMap/app", "field": "data[tls.conf] line 2", "kind": "pem", "evidence": f"{BEGIN}{label}-----****"}
    assert STUB_BODY not in finding["evidence"]


def test_pem_private_key_anywhere_in_the_object_is_found() -> None:
    obj = {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"auth": [{"key": pem("PRIVATE KEY")}]}}
    assert only(scan(obj))["field"] == "spec.auth[0].key line 1"  # multi-line strings name the line


def test_pem_certificate_and_public_key_are_not_secrets() -> None:
    # A real CA bundle body is long base64: it must not come back as high-entropy text either.
    body = "\n".join(random_text(BASE64, 64, seed=i) for i in range(4))
    bundle = f"{BEGIN}CERTIFICATE-----\n{body}\n{END}CERTIFICATE-----\n{BEGIN}PUBLIC KEY-----\n{body}\n{END}PUBLIC KEY-----\n"
    assert scan(config_map({"ca.crt": bundle})) == []


def test_pem_private_key_in_binary_data_is_found() -> None:
    encoded = base64.b64encode(pem("RSA PRIVATE KEY").encode()).decode()
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bin"}, "binaryData": {"client.key": encoded}}
    finding = only(scan(obj))
    assert (finding["field"], finding["kind"]) == ("binaryData[client.key]", "pem")


def test_pem_binary_data_without_key_is_not_flagged() -> None:
    blob = base64.b64encode(random.Random(1).randbytes(4096)).decode()
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bin"}, "binaryData": {"geo.db": blob}}
    assert scan(obj) == []


# -- token formats -------------------------------------------------------------------------------

TOKENS = [
    ("aws-access-key-id", AWS_KEY_ID, "AKIA****"),
    ("aws-session-key-id", AWS_SESSION_KEY_ID, "ASIA****"),
    ("github-classic", GITHUB_CLASSIC, "ghp_****"),
    ("github-app", GITHUB_APP, "ghs_****"),
    ("github-oauth", GITHUB_OAUTH, "gho_****"),
    ("github-fine-grained", GITHUB_FINE, "github_pat_****"),
    ("slack", SLACK, "xoxb-****"),
    ("jwt", JWT, "JWT eyJ****"),
    ("google-api-key", GOOGLE, "AIza****"),
    ("stripe", STRIPE, "sk_live_****"),
]


@pytest.mark.parametrize("name,token,evidence", TOKENS, ids=[t[0] for t in TOKENS])
def test_token_format_in_configmap_text_is_found(name: str, token: str, evidence: str) -> None:
    findings = scan(config_map({"notes.txt": f"first line\nupstream {token} here\n"}))
    finding = only(findings)
    assert finding == {"object": "ConfigMap/app", "field": "data[notes.txt] line 2", "kind": "token-format", "evidence": evidence}
    assert_masked(findings, token)


@pytest.mark.parametrize("name,token,evidence", TOKENS, ids=[t[0] for t in TOKENS])
def test_token_format_anywhere_in_the_object_is_found(name: str, token: str, evidence: str) -> None:
    obj = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "r"},
           "spec": {"groups": [{"rules": [{"annotations": {"action": f"call with {token}"}}]}]}}
    finding = only(scan(obj))
    assert (finding["field"], finding["kind"], finding["evidence"]) == ("spec.groups[0].rules[0].annotations.action", "token-format", evidence)


@pytest.mark.parametrize("text", [
    "AKIA" + "ABCDEFGHIJKLMNO",            # one character short
    "XAKIA" + "ABCDEFGHIJKLMNOP",          # inside a longer word
    "gh" + "p_short",
    "xo" + "xb-",
    "eyJhbGciOiJub25lIn0",                 # a single segment is not a JWT
    "sk" + "_live_short",
    "AI" + "za" + "short",
])
def test_token_format_near_misses_are_not_tokens(text: str) -> None:
    assert scan(config_map({"notes.txt": f"value {text} end"})) == []


def test_token_format_bearer_after_authorization_is_found() -> None:
    findings = scan(config_map({"proxy.conf": f"header Authorization: Bearer {BEARER}\n"}))
    finding = only(findings)
    assert (finding["field"], finding["kind"], finding["evidence"]) == ("data[proxy.conf] line 1", "token-format", "Authorization: Bearer ****")
    assert_masked(findings, BEARER)


def test_token_format_basic_authorization_header_is_found() -> None:
    credentials = base64.b64encode(b"fake-user:fake-pass").decode()
    finding = only(scan(config_map({"proxy.conf": f"Authorization: Basic {credentials}"})))
    assert (finding["kind"], finding["evidence"]) == ("token-format", "Authorization: Basic ****")


@pytest.mark.parametrize("text", [
    "Authorization: Bearer $TOKEN",
    "Authorization: Bearer ${TOKEN}",
    'Authorization: Bearer {{ .token }}',
    "clients send a Bearer authentication header",
])
def test_token_format_bearer_references_and_prose_are_not_tokens(text: str) -> None:
    assert scan(config_map({"proxy.conf": text})) == []


def test_token_format_basic_auth_url_is_found() -> None:
    findings = scan(config_map({"upstream.conf": f"upstream = https://feed-user:{FAKE_PASSWORD}@md.example.com:443/v1"}))
    finding = only(findings)
    assert (finding["field"], finding["kind"], finding["evidence"]) == (
        "data[upstream.conf] line 1", "token-format", "https://feed-user:****@md.example.com")
    assert_masked(findings, FAKE_PASSWORD)


@pytest.mark.parametrize("url", [
    "https://feed-user:${FEED_PASSWORD}@md.example.com/v1",
    "https://feed-user@md.example.com/v1",
    "https://md.example.com:443/v1",
    "postgres://app:$(DB_PASSWORD)@db:5432/app",
])
def test_token_format_urls_without_literal_password_are_clean(url: str) -> None:
    assert scan(config_map({"upstream.conf": f"upstream = {url}"})) == []


# -- assignments ---------------------------------------------------------------------------------


@pytest.mark.parametrize("line,key", [
    (f"fix.password={FAKE_PASSWORD}", "fix.password"),
    (f"SSLPassword: {FAKE_PASSWORD}", "SSLPassword"),
    (f"bearer_token = \"{FAKE_PASSWORD}\"", "bearer_token"),
    (f"  - client_secret: '{FAKE_PASSWORD}'", "client_secret"),
    (f"export VENUE_API_KEY={FAKE_PASSWORD}", "VENUE_API_KEY"),
    (f"Passphrase={FAKE_PASSWORD} # rotated monthly", "Passphrase"),
    (f"private_key: {FAKE_PASSWORD}", "private_key"),
    (f"ike_psk = {FAKE_PASSWORD}", "ike_psk"),
    (f"jdbc.url=jdbc:sqlserver://db;user=app;Password={FAKE_PASSWORD};encrypt=true", "Password"),
])
def test_assignment_in_configmap_text_is_found(line: str, key: str) -> None:
    findings = scan(config_map({"session.cfg": f"[DEFAULT]\nConnectionType=initiator\n{line}\n"}))
    finding = only(findings)
    assert finding == {"object": "ConfigMap/app", "field": "data[session.cfg] line 3", "kind": "assignment", "evidence": f"{key}=****"}
    assert_masked(findings, FAKE_PASSWORD)


def test_assignment_in_yaml_block_scalar_is_found() -> None:
    text = f"venue:\n  session:\n    password: |\n      {FAKE_PASSWORD}\n"
    finding = only(scan(config_map({"app.yaml": text})))
    assert (finding["field"], finding["evidence"]) == ("data[app.yaml] line 3", "password=****")


def test_assignment_in_json_is_found_at_its_json_path() -> None:
    gateway = {"services": [{"name": "fix-oe", "credentials": ["/var/run/secrets/venue/fix-oe-password"], "session": {"senderCompID": "A", "password": FAKE_PASSWORD}}]}
    findings = scan(config_map({"gateway.json": json.dumps(gateway, indent=2)}, name="venue-gateway"))
    assert findings == [{"object": "ConfigMap/venue-gateway", "field": "data[gateway.json].services[0].session.password",
                         "kind": "assignment", "evidence": "password=****"}]


def test_assignment_in_json_list_under_a_credential_key_is_found() -> None:
    finding = only(scan(config_map({"keys.json": json.dumps({"apiKeys": ["/var/run/secrets/a", FAKE_PASSWORD]})})))
    assert (finding["field"], finding["evidence"]) == ("data[keys.json].apiKeys[1]", "apiKeys=****")


def test_assignment_in_annotation_is_found() -> None:
    obj = config_map({})
    obj["metadata"]["annotations"] = {"vcpl.dev/api-token": FAKE_PASSWORD, "vcpl.dev/notes": f"fix.password={FAKE_PASSWORD}"}
    findings = scan(obj)
    assert [(f["field"], f["kind"], f["evidence"]) for f in findings] == [
        ("metadata.annotations[vcpl.dev/api-token]", "assignment", "vcpl.dev/api-token=****"),
        ("metadata.annotations[vcpl.dev/notes]", "assignment", "fix.password=****"),
    ]
    assert_masked(findings, FAKE_PASSWORD)


def test_assignment_in_pod_template_annotation_is_found() -> None:
    obj = deployment({})
    obj["spec"]["template"]["metadata"]["annotations"] = {"upstream.example/secret": FAKE_PASSWORD}
    assert only(scan(obj))["field"] == "spec.template.metadata.annotations[upstream.example/secret]"


def test_assignment_in_args_is_found() -> None:
    findings = scan(deployment({"args": ["--config=/etc/app.json", f"--password={FAKE_PASSWORD}", "--token", FAKE_PASSWORD]}))
    assert [(f["field"], f["kind"], f["evidence"]) for f in findings] == [
        ("spec.template.spec.containers[0].args[1]", "assignment", "password=****"),
        ("spec.template.spec.containers[0].args[3]", "assignment", "--token ****"),
    ]
    assert_masked(findings, FAKE_PASSWORD)


def test_assignment_in_shell_command_is_found() -> None:
    command = ["/bin/sh", "-c", f"export TOKEN={FAKE_PASSWORD}; curl -H \"Authorization: Bearer $TOKEN\" https://api"]
    finding = only(scan(deployment({"command": command})))
    assert (finding["field"], finding["evidence"]) == ("spec.template.spec.containers[0].command[2]", "TOKEN=****")


def test_assignment_in_external_secret_template_is_found() -> None:
    obj = {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "venue-vpn-psk"},
           "spec": {"target": {"template": {"data": {"psk.conf": f"secrets {{\n  ike-venue {{\n    secret = \"{FAKE_PASSWORD}\"\n  }}\n}}\n"}}}}}
    finding = only(scan(obj))
    assert (finding["field"], finding["kind"], finding["evidence"]) == ("spec.target.template.data[psk.conf] line 3", "assignment", "secret=****")


def test_assignment_secret_object_with_data_is_found() -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "venue-credentials"},
           "data": {"fix-password": base64.b64encode(FAKE_PASSWORD.encode()).decode()}, "stringData": {"psk": FAKE_PASSWORD, "empty": ""}}
    findings = scan(obj)
    assert [(f["field"], f["kind"], f["evidence"]) for f in findings] == [
        ("data[fix-password]", "assignment", "fix-password=****"),
        ("stringData[psk]", "assignment", "psk=****"),
    ]
    assert_masked(findings, FAKE_PASSWORD)


def test_assignment_secret_object_without_data_is_clean() -> None:
    assert scan({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "type": "kubernetes.io/service-account-token"}) == []


@pytest.mark.parametrize("text", [
    "fix.password=/var/run/secrets/venue/fix-password",
    "fix.password=./secrets/fix-password",
    "fix.password=${FIX_PASSWORD}",
    "fix.password=$(FIX_PASSWORD)",
    "api_key=$API_KEY",
    'secret = "{{ .psk }}"',
    "password=",
    "password:",
    "token: vault:secret/data/venue#token",
    "db_password=arn:aws:secretsmanager:eu-west-1:000000000000:secret:venue",
    "redact_keys = password,token,api_key",
    "password_file = /etc/app/password",
    "secretName: venue-credentials",
    "credentialsSecret: venue-credentials",
    "token_endpoint: https://auth.example.com/oauth/token",
    "token_ttl = 3600",
    "password_required = true",
    "# password=this-is-only-a-comment",
    "; token: see the vault",
    "# Credentials are not here: the engine reads them from /var/run/secrets/venue/.",
    "include /etc/vpn/secrets/*.conf",
    "auth = psk",
    "the token: rotate it monthly",
    "PSKsecrets = /etc/stunnel/psk.txt",
])
def test_assignment_references_and_prose_are_clean(text: str) -> None:
    assert scan(config_map({"app.conf": text + "\n"})) == []


def test_assignment_gateway_json_shape_is_clean() -> None:
    gateway = {"services": [
        {"name": "ilink3", "authMethod": "hmac-sha256", "credentials": ["/var/run/secrets/venue/ilink3-access-key-id", "/var/run/secrets/venue/ilink3-secret-key"]},
        {"name": "pillar", "authMethod": "password", "credentials": [], "session": {"senderCompID": "VCPL-NYSE-PRD"}},
    ]}
    assert scan(config_map({"gateway.json": json.dumps(gateway)})) == []


def test_assignment_external_secret_psk_template_is_clean() -> None:
    obj = {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "venue-vpn-psk"},
           "spec": {"data": [{"remoteRef": {"key": "vcpl/cboe/cert/ipsec", "property": "psk"}, "secretKey": "psk"}],
                    "target": {"name": "venue-vpn-psk", "template": {"engineVersion": "v2",
                               "data": {"psk.conf": "secrets {\n  ike-venue {\n    secret = \"{{ .psk }}\"\n  }\n}\n"}}}}}
    assert scan(obj) == []


# -- high entropy --------------------------------------------------------------------------------


def test_high_entropy_base64_in_configmap_text_is_found() -> None:
    findings = scan(config_map({"app.conf": f"[upstream]\nsignature_seed = {RANDOM_B64}\n"}))
    finding = only(findings)
    assert (finding["field"], finding["kind"]) == ("data[app.conf] line 2", "high-entropy")
    assert finding["evidence"].startswith("**** (40 base64 chars")
    assert_masked(findings, RANDOM_B64)


def test_high_entropy_short_base64_is_found() -> None:
    finding = only(scan(config_map({"app.conf": f"seed {RANDOM_B64_SHORT}"})))
    assert finding["kind"] == "high-entropy"


def test_high_entropy_hex_is_found() -> None:
    findings = scan(config_map({"app.conf": f"hmac {RANDOM_HEX}"}))
    finding = only(findings)
    assert (finding["kind"], finding["evidence"].split(" (")[1].split(",")[0]) == ("high-entropy", "40 hex chars")
    assert_masked(findings, RANDOM_HEX)


def test_high_entropy_in_json_string_is_found_at_its_path() -> None:
    finding = only(scan(config_map({"gateway.json": json.dumps({"services": [{"session": {"seed": RANDOM_B64}}]})})))
    assert (finding["field"], finding["kind"]) == ("data[gateway.json].services[0].session.seed", "high-entropy")


@pytest.mark.parametrize("text", [
    "image: registry.vcpl.dev/connectivity/ilink3-gateway:2.3.0@sha256:" + RANDOM_HEX + RANDOM_HEX[:24],
    "hash sha256-" + RANDOM_HEX[:32],
    "uid: 5a0e7c31-9d24-4b6f-8e17-c3f2a9b0d468",
    "host venue-gateway-headless.venue-cme-prod.svc.cluster.local",
    "cidr 10.60.20.11/32 and 2001:db8::/32",
    "path /etc/venue-gateway/gateway/gateway.json",
    "proposals = aes256gcm16-prfsha384-ecp384",
    "metric vcpl_session_heartbeat_timeouts_total",
    "kind CiliumEgressGatewayPolicy/fixture-prod-unlabelled",
    "short hex " + RANDOM_HEX[:24],
    "signing string timestamp+GET+/trade-api/ws/v2",
])
def test_high_entropy_exclusions_are_clean(text: str) -> None:
    assert scan(config_map({"app.conf": text})) == []


def test_high_entropy_digest_annotation_is_clean() -> None:
    obj = deployment({})
    obj["spec"]["template"]["metadata"]["annotations"] = {"vcpl.dev/config-hash": RANDOM_B64, "checksum/config": RANDOM_HEX}
    assert scan(obj) == []


def test_high_entropy_is_not_judged_outside_configuration_text() -> None:
    # Everywhere else only the exact formats count: a CRD's random-looking id is not flagged.
    obj = {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"id": RANDOM_B64}}
    assert scan(obj) == []


# -- container env -------------------------------------------------------------------------------


def test_literal_env_with_credential_name_is_found() -> None:
    findings = scan(deployment({"env": [{"name": "MODE", "value": "ordinal"}, {"name": "DB_PASSWORD", "value": FAKE_PASSWORD}]}))
    assert findings == [{"object": "Deployment/app", "field": "spec.template.spec.containers[0].env[1].value",
                         "kind": "literal-env", "evidence": "DB_PASSWORD=****"}]


def test_literal_env_innocent_name_with_bearer_token_is_found() -> None:
    findings = scan(deployment({"env": [{"name": "UPSTREAM_HEADER", "value": f"Bearer {BEARER}"}]}))
    assert [(f["field"], f["kind"], f["evidence"]) for f in findings] == [
        ("spec.template.spec.containers[0].env[0].value", "token-format", "Bearer ****")]
    assert_masked(findings, BEARER)


def test_literal_env_innocent_name_with_random_value_is_found() -> None:
    finding = only(scan(deployment({"env": [{"name": "UPSTREAM_SEED", "value": RANDOM_B64}]})))
    assert (finding["field"], finding["kind"]) == ("spec.template.spec.containers[0].env[0].value", "high-entropy")


def test_literal_env_in_cronjob_pod_template_is_found() -> None:
    finding = only(scan(cronjob({"env": [{"name": "API_TOKEN", "value": FAKE_PASSWORD}]})))
    assert finding["field"] == "spec.jobTemplate.spec.template.spec.containers[0].env[0].value"
    assert finding["object"] == "CronJob/job"


def test_literal_env_in_init_container_is_found() -> None:
    obj = cronjob({})
    obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0]["env"] = [{"name": "AWS_KEY", "value": AWS_KEY_ID}]
    finding = only(scan(obj))
    assert (finding["field"], finding["kind"]) == ("spec.jobTemplate.spec.template.spec.initContainers[0].env[0].value", "token-format")


@pytest.mark.parametrize("var", [
    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    {"name": "DB_PASSWORD_FILE", "value": "/var/run/secrets/db/password"},
    {"name": "API_TOKEN", "value": "$(API_TOKEN_FROM_SECRET)"},
    {"name": "TOKEN_REFRESH_SECONDS", "value": "300"},
    {"name": "SECRETS_DIR", "value": "/var/run/secrets/venue"},
    {"name": "VENUE_FAILOVER_MODE", "value": "ordinal"},
    {"name": "SWANCTL_CONF", "value": "/etc/vpn/config/swanctl.conf"},
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
])
def test_literal_env_references_are_clean(var: dict) -> None:
    assert scan(deployment({"env": [var]})) == []


# -- every finding is masked, the scan stays fast ------------------------------------------------


def test_evidence_never_contains_the_secret() -> None:
    secrets = [AWS_KEY_ID, GITHUB_CLASSIC, GITHUB_FINE, SLACK, JWT, GOOGLE, STRIPE, BEARER, FAKE_PASSWORD, RANDOM_B64, RANDOM_HEX]
    text = "\n".join([*(f"value{i} {s}" for i, s in enumerate(secrets)), f"fix.password={FAKE_PASSWORD}",
                      f"url=https://u:{FAKE_PASSWORD}@h", f"Authorization: Bearer {BEARER}", pem("PRIVATE KEY")])
    obj = config_map({"everything.conf": text})
    obj["spec"] = {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "PASSWORD", "value": FAKE_PASSWORD}], "args": secrets}]}}}
    findings = scan(obj)
    assert len(findings) >= len(secrets) * 2
    dumped = json.dumps([f["evidence"] for f in findings])
    for secret in [*secrets, STUB_BODY]:
        assert secret not in dumped


def test_a_megabyte_configmap_value_scans_in_well_under_a_second() -> None:
    lines = [f"venue.session{i}.host=10.60.{i % 250}.{i % 200}" for i in range(30000)]
    lines[15000] = f"venue.session.password={FAKE_PASSWORD}"
    properties = "\n".join(lines)
    dashboard = json.dumps({"panels": [{"id": i, "expr": f'sum(rate(vcpl_session_gaps_total{{venue="$venue"}}[5m])) by (service) {i}',
                                        "description": "check credentials and the token of the session"} for i in range(4000)]})
    blob = base64.b64encode(random.Random(2).randbytes(700_000)).decode()
    for value, expected in ((properties, 1), (dashboard, 0), (blob, 1)):
        assert len(value) >= 500_000
        started = time.perf_counter()
        findings = scan(config_map({"big": value}))
        elapsed = time.perf_counter() - started
        assert len(findings) == expected
        assert elapsed < 1.0, f"{elapsed:.2f}s for {len(value)} characters"

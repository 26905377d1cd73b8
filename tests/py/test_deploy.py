"""Checks of the monitoring files under deploy/: the Prometheus config, the
alert rules and their promtool unit tests, and the Grafana dashboard.

promtool comes from the Debian package `prometheus`, which
`scripts/setup-deps.sh --test` installs."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "bgeicl-dashboard.json"

# The metric names of the contract's "Prometheus metrics" section.
CONTRACT_METRICS = {
    "bge_icl_requests_total",
    "bge_icl_embeddings_generated_total",
    "bge_icl_input_tokens_total",
    "bge_icl_request_duration_seconds",
    "bge_icl_context_preparation_seconds",
    "bge_icl_queue_wait_seconds",
    "bge_icl_tokenization_seconds",
    "bge_icl_inference_seconds",
    "bge_icl_batch_size",
    "bge_icl_batch_tokens",
    "bge_icl_current_batch_size",
    "bge_icl_min_batch_size",
    "bge_icl_max_batch_size",
    "bge_icl_queue_depth",
    "bge_icl_active_connections",
    "bge_icl_cache_hit_rate",
    "bge_icl_context_cache_hits_total",
    "bge_icl_context_cache_misses_total",
    "bge_icl_embedding_cache_hits_total",
    "bge_icl_embedding_cache_misses_total",
    "bge_icl_embedding_cache_entries",
    "bge_icl_embedding_cache_bytes",
    "bge_icl_build_info",
}
HISTOGRAMS = {
    "bge_icl_request_duration_seconds",
    "bge_icl_context_preparation_seconds",
    "bge_icl_queue_wait_seconds",
    "bge_icl_tokenization_seconds",
    "bge_icl_inference_seconds",
    "bge_icl_batch_size",
    "bge_icl_batch_tokens",
}

# Required panel: (title prefix, metrics its queries must use).
REQUIRED_PANELS = {
    "Request rate": {"bge_icl_requests_total"},
    "Response time": {"bge_icl_request_duration_seconds"},
    "Cache hit rate": {"bge_icl_cache_hit_rate"},
    "Throughput": {"bge_icl_embeddings_generated_total"},
    "Adaptive batch size": {"bge_icl_current_batch_size", "bge_icl_min_batch_size",
                            "bge_icl_max_batch_size"},
    "Error rate": {"bge_icl_requests_total"},
    "Queue depth": {"bge_icl_queue_depth"},
}

METRIC_RE = re.compile(r"bge_icl_[a-z_]+")


def base_name(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return name[: -len(suffix)]
    return name


def metrics_in(text: str) -> set:
    return {base_name(m) for m in METRIC_RE.findall(text)}


def promtool(*args):
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is not installed; run scripts/setup-deps.sh --test "
                    "(it installs the Debian package prometheus)")
    r = subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (
        f"promtool {' '.join(args)} exited {r.returncode}\n"
        f"--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")
    return r.stdout


def test_prometheus_config_valid():
    promtool("check", "config", "deploy/prometheus/prometheus.yml")


def test_alert_rules_valid():
    out = promtool("check", "rules", "deploy/prometheus/alerts.yml")
    assert "5 rules found" in out, out


def test_alert_rules_unit_tests():
    promtool("test", "rules", "deploy/prometheus/alerts_test.yml")


def test_alert_rules_use_contract_metrics():
    text = (PROM / "alerts.yml").read_text()
    unknown = metrics_in(text) - CONTRACT_METRICS
    assert not unknown, f"alerts.yml uses metrics not in the contract: {sorted(unknown)}"


def load_dashboard():
    return json.loads(DASHBOARD.read_text())


def all_panels(dash):
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))  # panels collapsed inside rows
    return out


def test_dashboard_schema_and_datasource():
    dash = load_dashboard()
    assert dash["schemaVersion"] >= 36
    text = DASHBOARD.read_text()
    assert "${DS_PROMETHEUS}" in text
    names = {v["name"]: v for v in dash["templating"]["list"]}
    assert names["DS_PROMETHEUS"]["type"] == "datasource"
    assert names["DS_PROMETHEUS"]["query"] == "prometheus"


def test_dashboard_uses_only_contract_metrics():
    dash = load_dashboard()
    used = set()
    for p in all_panels(dash):
        for t in p.get("targets", []):
            used |= metrics_in(t.get("expr", ""))
    assert used, "no bge_icl_ metric found in any panel expression"
    unknown = used - CONTRACT_METRICS
    assert not unknown, f"dashboard panels use metrics not in the contract: {sorted(unknown)}"
    # Template variables and anything else in the file, too.
    unknown = metrics_in(DASHBOARD.read_text()) - CONTRACT_METRICS
    assert not unknown, f"dashboard uses metrics not in the contract: {sorted(unknown)}"


@pytest.mark.parametrize("title", sorted(REQUIRED_PANELS))
def test_dashboard_has_required_panel(title):
    dash = load_dashboard()
    matches = [p for p in all_panels(dash) if p.get("title", "").startswith(title)]
    assert matches, f"no panel titled {title!r}; have {[p.get('title') for p in all_panels(dash)]}"
    used = set()
    for p in matches:
        for t in p.get("targets", []):
            used |= metrics_in(t.get("expr", ""))
    missing = REQUIRED_PANELS[title] - used
    assert not missing, f"panel {title!r} does not query {sorted(missing)}"

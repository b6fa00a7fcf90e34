package vcpl.multicast_test

import data.vcpl.fixtures
import data.vcpl.multicast

channels_cm(channels) := fixtures.resource("ConfigMap", "feed-channels", "acme", "prod", {"data": {"channels.json": json.marshal({"channels": channels})}})

line(group, port, interface) := {"group": group, "port": port, "interface": interface}

good_channel := {"id": 1, "a": line("224.0.31.1", 14000, "feeda"), "b": line("224.0.32.1", 15000, "feedb")}

nad(name) := fixtures.resource("NetworkAttachmentDefinition", name, "acme", "prod", {"spec": {"config": "{}"}})

mnp(policy_for) := fixtures.resource("MultiNetworkPolicy", "feed-lines", "acme", "prod", {
	"metadata": {"annotations": {"k8s.v1.cni.cncf.io/policy-for": policy_for}},
	"spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
})

gateway(networks) := fixtures.resource("StatefulSet", "venue-gateway", "acme", "prod", {"spec": {"template": {
	"metadata": {"annotations": {"k8s.v1.cni.cncf.io/networks": networks}},
	"spec": {"containers": [{"name": "gateway"}]},
}}})

json_networks := `[{"name":"feed-a","interface":"feeda"},{"name":"feed-b","interface":"feedb"}]`

results_of(objs) := results if {
	results := multicast.deny with input as fixtures.entries(objs) with data.runbooks as {}
}

# ---------------------------------------------------------------------------
# multicast-ab-lines
# ---------------------------------------------------------------------------

test_multicast_ab_lines_accepts_distinct_groups_and_interfaces if {
	count(fixtures.results_for(results_of([channels_cm([good_channel])]), "multicast-ab-lines")) == 0
}

test_multicast_ab_lines_rejects_shared_group if {
	channel := {"id": 7, "a": line("224.0.31.1", 14000, "feeda"), "b": line("224.0.31.1", 15000, "feedb")}
	results := results_of([channels_cm([good_channel, channel])])
	fixtures.fields_for(results, "multicast-ab-lines") == {"data[channels.json].channels[1].b.group"}
}

test_multicast_ab_lines_rejects_shared_interface if {
	channel := {"id": 7, "a": line("224.0.31.1", 14000, "feeda"), "b": line("224.0.32.1", 15000, "feeda")}
	results := results_of([channels_cm([channel])])
	fixtures.fields_for(results, "multicast-ab-lines") == {"data[channels.json].channels[0].b.interface"}
}

# ---------------------------------------------------------------------------
# multicast-nad-exists
# ---------------------------------------------------------------------------

test_multicast_nad_exists_accepts_json_list if {
	objs := [gateway(json_networks), nad("feed-a"), nad("feed-b"), mnp("feed-a,feed-b")]
	count(fixtures.results_for(results_of(objs), "multicast-nad-exists")) == 0
}

test_multicast_nad_exists_accepts_comma_separated_names if {
	objs := [gateway("feed-a@feeda, venue-acme-prod/feed-b"), nad("feed-a"), nad("feed-b"), mnp("feed-a,feed-b")]
	count(fixtures.results_for(results_of(objs), "multicast-nad-exists")) == 0
}

test_multicast_nad_exists_rejects_unknown_name if {
	objs := [gateway(json_networks), nad("feed-a"), mnp("feed-a,feed-b")]
	results := fixtures.results_for(results_of(objs), "multicast-nad-exists")
	count(results) == 1
	some r in results
	contains(r.msg, `"feed-b"`)
	r.details.object == "StatefulSet/venue-gateway"
}

test_multicast_nad_exists_rejects_other_namespace if {
	objs := [gateway("other-ns/feed-a"), nad("feed-a"), mnp("feed-a")]
	count(fixtures.results_for(results_of(objs), "multicast-nad-exists")) == 1
}

test_multicast_nad_exists_rejects_nad_of_another_overlay if {
	other := fixtures.resource("NetworkAttachmentDefinition", "feed-a", "acme", "cert", {})
	objs := [gateway("feed-a"), other, mnp("feed-a")]
	count(fixtures.results_for(results_of(objs), "multicast-nad-exists")) == 1
}

test_multicast_nad_exists_rejects_invalid_json_annotation if {
	objs := [gateway(`[{"name":"feed-a"`), nad("feed-a"), mnp("feed-a")]
	count(fixtures.results_for(results_of(objs), "multicast-nad-exists")) == 1
}

# ---------------------------------------------------------------------------
# multicast-multinetworkpolicy
# ---------------------------------------------------------------------------

test_multicast_multinetworkpolicy_accepts_qualified_names_with_spaces if {
	objs := [gateway(json_networks), nad("feed-a"), nad("feed-b"), mnp(" venue-acme-prod/feed-a , feed-b ")]
	count(fixtures.results_for(results_of(objs), "multicast-multinetworkpolicy")) == 0
}

test_multicast_multinetworkpolicy_rejects_unfenced_network if {
	objs := [gateway(json_networks), nad("feed-a"), nad("feed-b"), mnp("feed-a")]
	results := fixtures.results_for(results_of(objs), "multicast-multinetworkpolicy")
	count(results) == 1
	some r in results
	contains(r.msg, `"feed-b"`)
}

test_multicast_multinetworkpolicy_rejects_missing_policy if {
	objs := [gateway("feed-a"), nad("feed-a")]
	count(fixtures.results_for(results_of(objs), "multicast-multinetworkpolicy")) == 1
}

# ---------------------------------------------------------------------------
# multicast-ab-anti-affinity
# ---------------------------------------------------------------------------

feed_pod(name, feed_line, affinity) := fixtures.resource("Deployment", name, "acme", "prod", {"spec": {"template": {
	"metadata": {"labels": {"vcpl.dev/feed-line": feed_line}},
	"spec": object.union({"containers": [{"name": "handler"}]}, affinity),
}}})

anti_affinity(selector) := {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
	"topologyKey": "kubernetes.io/hostname",
	"labelSelector": selector,
}]}}}

by_label := anti_affinity({"matchLabels": {"vcpl.dev/feed-line": "a"}})

by_expression := anti_affinity({"matchExpressions": [{"key": "vcpl.dev/feed-line", "operator": "Exists"}]})

test_multicast_ab_anti_affinity_accepts_required_hostname_anti_affinity if {
	objs := [feed_pod("feed-a", "a", by_expression), feed_pod("feed-b", "b", by_label)]
	count(fixtures.results_for(results_of(objs), "multicast-ab-anti-affinity")) == 0
}

test_multicast_ab_anti_affinity_accepts_single_line if {
	objs := [feed_pod("feed-a", "a", {})]
	count(fixtures.results_for(results_of(objs), "multicast-ab-anti-affinity")) == 0
}

test_multicast_ab_anti_affinity_rejects_missing_anti_affinity if {
	objs := [feed_pod("feed-a", "a", by_label), feed_pod("feed-b", "b", {})]
	results := fixtures.results_for(results_of(objs), "multicast-ab-anti-affinity")
	{r.details.object | some r in results} == {"Deployment/feed-b"}
}

test_multicast_ab_anti_affinity_rejects_zone_topology if {
	zone := {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
		"topologyKey": "topology.kubernetes.io/zone",
		"labelSelector": {"matchLabels": {"vcpl.dev/feed-line": "b"}},
	}]}}}
	objs := [feed_pod("feed-a", "a", by_label), feed_pod("feed-b", "b", zone)]
	count(fixtures.results_for(results_of(objs), "multicast-ab-anti-affinity")) == 1
}

package vcpl.multicast_test

import data.vcpl.fixtures
import data.vcpl.multicast

# ---------------------------------------------------------------------------
# A realistic prod overlay: one channel on lines A and B, a hot standby
# ---------------------------------------------------------------------------

runbook := {
	"venue": {"id": "acme"},
	"services": [{
		"name": "mdp",
		"environments": {"prod": {"channels": [{
			"id": 348, "name": "channel 348",
			"lines": {
				"a": {"group": "224.0.31.71", "port": 14348},
				"b": {"group": "224.0.32.71", "port": 15348},
			},
		}]}},
	}],
	"environments": {"prod": {"networks": [{"path": "cross-connect"}]}},
}

platform := {"multicast": {"a": {"master": "ens2f0"}, "b": {"master": "ens2f1"}}}

line(group, port, interface) := {"group": group, "port": port, "interface": interface}

good_channel := {"id": 348, "service": "mdp", "a": line("224.0.31.71", 14348, "feeda"), "b": line("224.0.32.71", 15348, "feedb")}

channel_file(channels) := {
	"object": "ConfigMap/feed-channels", "field": "data[channels.json]",
	"path": "/etc/venue-gateway/feeds/channels.json",
	"config": {"venue": "acme", "environment": "prod", "channels": channels, "recovery": []},
}

annotation_field := "spec.template.metadata.annotations[k8s.v1.cni.cncf.io/networks]"

network(name, interface, master) := {
	"name": name, "namespace": null, "interface": interface, "field": annotation_field,
	"nad": sprintf("NetworkAttachmentDefinition/%s", [name]), "master": master, "type": "macvlan",
}

good_networks := [network("feed-a", "feeda", "ens2f0"), network("feed-b", "feedb", "ens2f1")]

nads := [
	{"id": "NetworkAttachmentDefinition/feed-a", "name": "feed-a", "master": "ens2f0", "type": "macvlan", "config": {}, "field": "spec.config"},
	{"id": "NetworkAttachmentDefinition/feed-b", "name": "feed-b", "master": "ens2f1", "type": "macvlan", "config": {}, "field": "spec.config"},
]

udp(port) := {"protocol": "UDP", "port": port, "endPort": null}

feed_policy := {
	"object": "MultiNetworkPolicy/feed-lines",
	"policyFor": ["feed-a", "feed-b"],
	"policyTypes": ["Ingress"],
	"ingress": [
		{"object": "MultiNetworkPolicy/feed-lines", "field": "spec.ingress[0]", "peers": [{"kind": "any"}], "ports": [udp(14348)]},
		{"object": "MultiNetworkPolicy/feed-lines", "field": "spec.ingress[1]", "peers": [{"kind": "any"}], "ports": [udp(15348)]},
	],
	"egress": [],
}

node_anti_affinity := {"topologyKey": "kubernetes.io/hostname", "required": true, "matchesSelf": true}

gateway_pod := {
	"id": "StatefulSet/venue-gateway", "kind": "StatefulSet", "name": "venue-gateway",
	"template": "spec.template", "role": "gateway", "labels": {},
	"replicas": {"declared": null, "max": 2, "scaledBy": [{"object": "CronJob/session-open", "replicas": 2}]},
	"networks": good_networks,
	"multiNetworkPolicies": [feed_policy],
	"scheduling": {"antiAffinity": [node_anti_affinity], "spread": [], "nodeSelector": {}, "nodeAffinityRequired": []},
	"containers": [],
}

overlay(pod, channels) := fixtures.model("acme", "prod", {
	"runbook": runbook, "platform": platform,
	"pods": [pod], "networks": nads,
	"sessions": {"channels": [channel_file(channels)]},
})

good := overlay(gateway_pod, [good_channel])

results(m) := found if {
	found := multicast.deny with input as m
}

located(m, rule_id) := {[r.details.object, r.details.field] | some r in fixtures.results_for(results(m), rule_id)}

with_networks(networks) := object.union(gateway_pod, {"networks": networks})

with_policies(policies) := object.union(gateway_pod, {"multiNetworkPolicies": policies})

# ---------------------------------------------------------------------------
# multicast-lines-attached
# ---------------------------------------------------------------------------

test_multicast_lines_attached_accepts_run_book_channel_on_attached_networks if {
	count(fixtures.results_for(results(good), "multicast-lines-attached")) == 0
}

test_multicast_lines_attached_accepts_overlay_without_channels if {
	m := fixtures.model("acme", "prod", {"pods": [object.union(gateway_pod, {"networks": [], "multiNetworkPolicies": []})]})
	count(results(m)) == 0
}

test_multicast_lines_attached_rejects_line_b_removed_from_channels_json if {
	channel := object.remove(good_channel, ["b"])
	located(overlay(gateway_pod, [channel]), "multicast-lines-attached") == {["ConfigMap/feed-channels", "data[channels.json].channels[0].b"]}
}

test_multicast_lines_attached_rejects_changed_group if {
	channel := object.union(good_channel, {"a": {"group": "224.0.31.72"}})
	located(overlay(gateway_pod, [channel]), "multicast-lines-attached") == {["ConfigMap/feed-channels", "data[channels.json].channels[0].a.group"]}
}

test_multicast_lines_attached_rejects_changed_port if {
	channel := object.union(good_channel, {"b": {"port": 15349}})
	m := overlay(gateway_pod, [channel])
	located(m, "multicast-lines-attached") == {["ConfigMap/feed-channels", "data[channels.json].channels[0].b.port"]}
}

test_multicast_lines_attached_rejects_interface_not_attached if {
	channel := object.union(good_channel, {"b": {"interface": "feedc"}})
	located(overlay(gateway_pod, [channel]), "multicast-lines-attached") == {["ConfigMap/feed-channels", "data[channels.json].channels[0].b.interface"]}
}

test_multicast_lines_attached_rejects_network_without_nad if {
	networks := [good_networks[0], object.union(good_networks[1], {"nad": null, "master": null})]
	located(overlay(with_networks(networks), [good_channel]), "multicast-lines-attached") == {["StatefulSet/venue-gateway", annotation_field]}
}

test_multicast_lines_attached_rejects_channel_missing if {
	other := object.union(good_channel, {"id": 349})
	located(overlay(gateway_pod, [other]), "multicast-lines-attached") == {["ConfigMap/feed-channels", "data[channels.json].channels"]}
}

test_multicast_lines_attached_rejects_no_channel_file if {
	m := object.union(good, {"sessions": {"channels": []}})
	located(m, "multicast-lines-attached") == {["StatefulSet/venue-gateway", "spec.template.spec.containers"]}
}

test_multicast_lines_attached_rejects_unreadable_channel_file if {
	m := object.union(good, {"sessions": {"channels": [object.union(channel_file([]), {"config": null})]}})
	located(m, "multicast-lines-attached") == {["ConfigMap/feed-channels", "data[channels.json]"]}
}

# ---------------------------------------------------------------------------
# multicast-ab-separate
# ---------------------------------------------------------------------------

test_multicast_ab_separate_accepts_own_nad_and_nic_per_line if {
	count(fixtures.results_for(results(good), "multicast-ab-separate")) == 0
}

test_multicast_ab_separate_rejects_feed_nads_on_same_master if {
	networks := [good_networks[0], object.union(good_networks[1], {"master": "ens2f0"})]
	m := object.union(overlay(with_networks(networks), [good_channel]), {"networks": [nads[0], object.union(nads[1], {"master": "ens2f0"})]})
	located(m, "multicast-ab-separate") == {["NetworkAttachmentDefinition/feed-b", "spec.config"]}
}

test_multicast_ab_separate_rejects_same_nad_attached_twice if {
	networks := [good_networks[0], network("feed-a", "feedb", "ens2f0")]
	found := located(overlay(with_networks(networks), [good_channel]), "multicast-ab-separate")
	found == {["StatefulSet/venue-gateway", annotation_field]}
	some r in fixtures.results_for(results(overlay(with_networks(networks), [good_channel])), "multicast-ab-separate")
	contains(r.msg, "attached twice")
}

test_multicast_ab_separate_rejects_both_lines_on_one_interface if {
	channel := object.union(good_channel, {"b": {"interface": "feeda"}})
	located(overlay(gateway_pod, [channel]), "multicast-ab-separate") == {["ConfigMap/feed-channels", "data[channels.json].channels[0].b.interface"]}
}

test_multicast_ab_separate_rejects_network_without_master if {
	networks := [good_networks[0], object.union(good_networks[1], {"master": null})]
	located(overlay(with_networks(networks), [good_channel]), "multicast-ab-separate") == {["NetworkAttachmentDefinition/feed-b", "spec.config"]}
}

test_multicast_ab_separate_rejects_network_without_nad if {
	networks := [good_networks[0], object.union(good_networks[1], {"nad": null, "master": null})]
	located(overlay(with_networks(networks), [good_channel]), "multicast-ab-separate") == {["StatefulSet/venue-gateway", annotation_field]}
}

test_multicast_ab_separate_rejects_master_the_platform_does_not_name if {
	networks := [good_networks[0], object.union(good_networks[1], {"master": "eth0"})]
	located(overlay(with_networks(networks), [good_channel]), "multicast-ab-separate") == {["NetworkAttachmentDefinition/feed-b", "spec.config"]}
}

# ---------------------------------------------------------------------------
# multicast-multinetworkpolicy
# ---------------------------------------------------------------------------

test_multicast_multinetworkpolicy_accepts_feed_policy_for_both_networks if {
	count(fixtures.results_for(results(good), "multicast-multinetworkpolicy")) == 0
}

test_multicast_multinetworkpolicy_accepts_namespace_qualified_policy_for if {
	policy := object.union(feed_policy, {"policyFor": ["venue-acme-prod/feed-a", " feed-b"]})
	m := overlay(with_policies([policy]), [good_channel])
	count(fixtures.results_for(results(m), "multicast-multinetworkpolicy")) == 0
}

test_multicast_multinetworkpolicy_rejects_no_policy if {
	m := overlay(with_policies([]), [good_channel])
	located(m, "multicast-multinetworkpolicy") == {["StatefulSet/venue-gateway", annotation_field]}
	count(fixtures.results_for(results(m), "multicast-multinetworkpolicy")) == 2
}

test_multicast_multinetworkpolicy_rejects_line_b_network_not_named if {
	policy := object.union(feed_policy, {"policyFor": ["feed-a"]})
	m := overlay(with_policies([policy]), [good_channel])
	found := fixtures.results_for(results(m), "multicast-multinetworkpolicy")
	count(found) == 1
	some r in found
	r.details.object == "StatefulSet/venue-gateway"
	contains(r.msg, "network feed-b")
}

test_multicast_multinetworkpolicy_rejects_policy_without_ingress if {
	policy := object.union(feed_policy, {"policyTypes": ["Egress"]})
	m := overlay(with_policies([policy]), [good_channel])
	located(m, "multicast-multinetworkpolicy") == {["MultiNetworkPolicy/feed-lines", "spec.policyTypes"]}
}

test_multicast_multinetworkpolicy_rejects_allow_all_rule if {
	open_rule := {"object": "MultiNetworkPolicy/feed-lines", "field": "spec.ingress[2]", "peers": [{"kind": "any"}], "ports": [{"protocol": "any", "port": "any", "endPort": null}]}
	policy := object.union(feed_policy, {"ingress": array.concat(feed_policy.ingress, [open_rule])})
	m := overlay(with_policies([policy]), [good_channel])
	located(m, "multicast-multinetworkpolicy") == {["MultiNetworkPolicy/feed-lines", "spec.ingress[2]"]}
}

test_multicast_multinetworkpolicy_rejects_port_no_line_uses if {
	ssh := {"object": "MultiNetworkPolicy/feed-lines", "field": "spec.ingress[2]", "peers": [{"kind": "any"}], "ports": [{"protocol": "TCP", "port": 22, "endPort": null}]}
	policy := object.union(feed_policy, {"ingress": array.concat(feed_policy.ingress, [ssh])})
	m := overlay(with_policies([policy]), [good_channel])
	located(m, "multicast-multinetworkpolicy") == {["MultiNetworkPolicy/feed-lines", "spec.ingress[2]"]}
}

test_multicast_multinetworkpolicy_rejects_policy_dropping_line_b if {
	policy := object.union(feed_policy, {"ingress": [feed_policy.ingress[0]]})
	m := overlay(with_policies([policy]), [good_channel])
	located(m, "multicast-multinetworkpolicy") == {["MultiNetworkPolicy/feed-lines", "spec.ingress"]}
}

# ---------------------------------------------------------------------------
# multicast-ab-anti-affinity
# ---------------------------------------------------------------------------

test_multicast_ab_anti_affinity_accepts_standby_on_another_node if {
	count(fixtures.results_for(results(good), "multicast-ab-anti-affinity")) == 0
}

test_multicast_ab_anti_affinity_accepts_single_feed_pod_without_anti_affinity if {
	pod := object.union(gateway_pod, {
		"replicas": {"declared": 1, "max": 1, "scaledBy": []},
		"scheduling": {"antiAffinity": []},
	})
	count(fixtures.results_for(results(overlay(pod, [good_channel])), "multicast-ab-anti-affinity")) == 0
}

anti_affinity_field := "spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"

test_multicast_ab_anti_affinity_rejects_anti_affinity_removed if {
	pod := object.union(gateway_pod, {"scheduling": {"antiAffinity": []}})
	located(overlay(pod, [good_channel]), "multicast-ab-anti-affinity") == {["StatefulSet/venue-gateway", anti_affinity_field]}
}

test_multicast_ab_anti_affinity_rejects_preferred_only if {
	pod := object.union(gateway_pod, {"scheduling": {"antiAffinity": [object.union(node_anti_affinity, {"required": false})]}})
	located(overlay(pod, [good_channel]), "multicast-ab-anti-affinity") == {["StatefulSet/venue-gateway", anti_affinity_field]}
}

test_multicast_ab_anti_affinity_rejects_zone_key if {
	pod := object.union(gateway_pod, {"scheduling": {"antiAffinity": [object.union(node_anti_affinity, {"topologyKey": "topology.kubernetes.io/zone"})]}})
	located(overlay(pod, [good_channel]), "multicast-ab-anti-affinity") == {["StatefulSet/venue-gateway", anti_affinity_field]}
}

test_multicast_ab_anti_affinity_rejects_selector_missing_own_pods if {
	pod := object.union(gateway_pod, {"scheduling": {"antiAffinity": [object.union(node_anti_affinity, {"matchesSelf": false})]}})
	located(overlay(pod, [good_channel]), "multicast-ab-anti-affinity") == {["StatefulSet/venue-gateway", anti_affinity_field]}
}

test_multicast_ignores_library_index if {
	count(multicast.deny) == 0 with input as {"kind": "LibraryIndex", "sessions": []}
}

# ---------------------------------------------------------------------------
# Retransmission lines (recovery kind multicast-retransmission): requested over
# TCP, delivered on their own A/B lines, which the engine must join like channels
# ---------------------------------------------------------------------------

retransmission := {
	"kind": "multicast-retransmission",
	"endpoint": {"host": "10.60.30.20", "port": 11100, "transport": "tcp"},
	"lines": {"a": {"group": "224.0.31.72", "port": 14400}, "b": {"group": "224.0.32.72", "port": 15400}},
}

retransmission_runbook := json.patch(runbook, [{"op": "add", "path": "/services/0/environments/prod/recovery", "value": [retransmission]}])

retransmission_entry := {
	"id": "mdp.recovery[0]", "service": "mdp", "kind": "multicast-retransmission", "host": "10.60.30.20", "port": 11100,
	"a": line("224.0.31.72", 14400, "feeda"), "b": line("224.0.32.72", 15400, "feedb"),
}

with_recovery(entries) := json.patch(overlay(gateway_pod, [good_channel]), [
	{"op": "replace", "path": "/runbook", "value": retransmission_runbook},
	{"op": "replace", "path": "/sessions/channels/0/config/recovery", "value": entries},
])

test_multicast_lines_attached_accepts_retransmission_lines_in_channels_json if {
	count(fixtures.results_for(results(with_recovery([retransmission_entry])), "multicast-lines-attached")) == 0
}

test_multicast_lines_attached_rejects_retransmission_lines_missing if {
	# The v1 shape: a TCP endpoint only, so the engine never joins the retransmission groups.
	entry := object.remove(retransmission_entry, ["id", "a", "b"])
	found := fixtures.results_for(results(with_recovery([entry])), "multicast-lines-attached")
	count(found) == 1
	some r in found
	contains(r.msg, "mdp.recovery[0]")
}

test_multicast_lines_attached_rejects_retransmission_group_changed if {
	entry := object.union(retransmission_entry, {"b": {"group": "224.0.32.73"}})
	located(with_recovery([entry]), "multicast-lines-attached") == {["ConfigMap/feed-channels", "data[channels.json].recovery[0].b.group"]}
}

"""Cluster rehearsal: a real Kubernetes control plane as local processes, with simulated nodes (kwok).

`make setup-rehearsal` builds the toolchain into .tools/rehearsal/bin; `controlplane.ControlPlane`
starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1.
"""

"""Deployment material: the container image and the Kubernetes manifests, checked offline."""

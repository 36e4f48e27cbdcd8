"""The resource metrics pipeline (metrics-server's job): kubelet scrapes -> metrics.k8s.io."""

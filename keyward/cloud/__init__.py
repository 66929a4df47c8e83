"""Temporal Cloud: the Cloud Operations API as keyward uses it.

``keyward.cloud.ops.CloudOps`` is the one long-lived client (the SDK's own
``CloudOperationsClient`` underneath); ``models`` holds what it returns as plain
dataclasses, ``errors`` maps gRPC statuses onto keyward's failure model, ``settings`` is the
``[cloud]`` section. Import the modules themselves: this package re-exports nothing, so that
``keyward.config``, which imports ``keyward.config.cloud``, loads no client code.
"""

"""Streaming protocols of the kubelet's server (logs, exec, attach, port-forward).

    channels.py         websocket channel protocol (v5/v4.channel.k8s.io) and SPDY tunnel
    spdy.py             SPDY/3.1 frames and compressed header blocks
    spdy_connection.py  the server side of a SPDY connection: streams the client opens
    hijack.py           the raw connection after "101 Switching Protocols" (SPDY upgrades)
    remotecommand.py    exec/attach: a runtime session joined to the client's streams
    portforward.py      connections spliced to localhost:<port> inside the pod's netns
    logs.py             CRI log records -> kubectl logs output (timestamps, limitBytes)
"""
